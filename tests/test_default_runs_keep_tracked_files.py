"""Default runs write only under their output folder: a training script run with a shipped config (as the README's
commands do, shortened) and a benchmark run with default output options leave every tracked file of the repository
as it was; the tracked results files change only when ``--results_file`` names them. Shipped results record no
absolute machine paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

ROOT = Path(__file__).resolve().parents[1]


def _tracked_status() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return done.stdout


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if env.get("PYTHONPATH"):  # the scripts run from another folder: keep a relative PYTHONPATH pointing where it did
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep))
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_training_script_and_benchmark_defaults_leave_tracked_files_unchanged(tmp_path):
    before = _tracked_status()
    results = ROOT / "examples" / "optvq" / "results" / "mnist.json"
    shipped = results.read_bytes()
    # the README's command with the shipped config, shortened to 2 steps on synthetic images; run from another
    # folder so that the config's --output_dir (outputs/...) is a fresh one
    _run(
        [str(ROOT / "examples" / "optvq" / "train_optvq.py"), "--config",
         str(ROOT / "examples" / "optvq" / "configs" / "mnist_optvq.yaml"), "--dataset", "synthetic", "--model",
         "test", "--max_steps", "2", "--eval_steps", "2", "--eval_samples", "16", "--batch_size", "8",
         "--report_to", "none"],
        cwd=tmp_path,
    )  # fmt: skip
    (written,) = (tmp_path / "outputs").glob("*/eval_results.json")
    assert json.loads(written.read_text())["metrics"]
    _run([str(ROOT / "benchmarks" / "bench_prior_sampling.py"), "--image_size", "32", "--repeats", "1"], cwd=tmp_path)
    assert json.loads((tmp_path / "outputs" / "benchmarks" / "bench_prior_sampling.json").read_text())["commit"]
    assert results.read_bytes() == shipped
    assert _tracked_status() == before


@pytest.mark.parametrize("config", sorted(ROOT.glob("examples/*/configs/*.yaml")), ids=lambda p: p.name)
def test_no_config_names_a_results_file(config):
    import yaml

    data = yaml.safe_load(config.read_text()) or {}
    assert "results_file" not in data, f"{config.relative_to(ROOT)}: pass --results_file on the command line instead"


def test_results_file_only_when_named(tmp_path):
    target = tmp_path / "results" / "mine.json"
    _run(
        [str(ROOT / "examples" / "optvq" / "train_optvq.py"), "--config",
         str(ROOT / "examples" / "optvq" / "configs" / "smoke.yaml"), "--output_dir", str(tmp_path / "run"),
         "--results_file", str(target), "--run_name", "smoke"],
        cwd=tmp_path,
    )  # fmt: skip
    entry = json.loads(target.read_text())["smoke"]
    # a path outside the repository is recorded as a placeholder, never as this machine's absolute path
    assert str(tmp_path) not in entry["command"] and "<external>/run" in entry["command"]


_ABSOLUTE = re.compile(r"(?:^|[\s=])(/(?:work|home|root|tmp|Users|mnt|data|opt|var)/[^\s\"']*)")


def _shipped_results() -> list[Path]:
    return sorted([*ROOT.glob("examples/*/results/*.json"), *ROOT.glob("benchmarks/results/*.json")])


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("path", _shipped_results(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shipped_results_record_no_absolute_paths(path):
    found = [m for s in _strings(json.loads(path.read_text())) for m in _ABSOLUTE.findall(s)]
    assert not found, f"{path.relative_to(ROOT)} records absolute machine paths: {sorted(set(found))[:5]}"


def test_recorded_paths_are_repo_relative_or_placeholders(tmp_path, monkeypatch):
    from mmquant.training import command_line, portable_args, repo_relative

    inside = ROOT / "examples" / "optvq"
    assert repo_relative(inside) == "examples/optvq"
    assert repo_relative(tmp_path / "run") == "<external>/run"
    args = ["--output_dir", str(tmp_path / "a"), "--models", f"x={ROOT / 'outputs' / 'q'}", "--lr", "0.1"]
    assert portable_args(args) == ["--output_dir", "<external>/a", "--models", "x=outputs/q", "--lr", "0.1"]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "examples" / "optvq" / "train_optvq.py"), f"--p={tmp_path / 'z'}"])
    assert command_line() == "python examples/optvq/train_optvq.py --p=<external>/z"

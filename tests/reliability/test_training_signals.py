"""Real training runs (examples/optvq/train_optvq.py on synthetic images, the tiny ``test`` model) in subprocesses:
Ctrl-C (SIGINT) and SIGTERM (a preempted cluster job) finish the step, save a checkpoint and exit cleanly, and the
run resumes from it to the same result as an uninterrupted run; ``--resume_from_checkpoint latest`` without a
previous run says so on stderr; ``--max_steps 20`` (the natural smoke run) works with the one-cycle schedule; a
``trainer_state.json`` with wrong types is named with its field."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmquant.training import CheckpointError, latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "optvq" / "train_optvq.py"
SMOKE = ROOT / "examples" / "optvq" / "configs" / "smoke.yaml"


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def _command(out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, str(SCRIPT), "--config", str(SMOKE), "--output_dir", str(out), "--num_threads", "1"]
    return cmd + ["--checkpointing_steps", "1000", "--eval_steps", "1000", *extra]


def _losses(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / "losses.jsonl").read_text().splitlines()) if "loss" in r]


def _signal_after_steps(proc: subprocess.Popen, out: Path, sig: int, steps: int = 3) -> None:
    log = out / "losses.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= steps:
            proc.send_signal(sig)
            return
        time.sleep(0.01)
    raise AssertionError(f"the run did not reach step {steps} (exit code {proc.poll()})")


@pytest.mark.time_bound(200)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_the_run_resumes_to_the_same_result(tmp_path, sig):
    steps = 40
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _command(out, "--max_steps", str(steps)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True
    )
    _signal_after_steps(proc, out, sig)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    latest = latest_checkpoint(out)
    assert latest is not None, "no checkpoint was saved on the signal"
    stopped_at = int(latest.name.split("-")[1])
    assert 3 <= stopped_at < steps
    name = signal.Signals(sig).name
    assert f"stopped by {name} at step {stopped_at}: checkpoint-{stopped_at} saved" in err
    assert "--resume_from_checkpoint latest" in err
    assert not (out / "model.safetensors").exists()  # no final save: the run did not finish

    resumed = subprocess.run(
        _command(out, "--max_steps", str(steps), "--resume_from_checkpoint", "latest"),
        capture_output=True, text=True, env=_env(), timeout=150,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {latest} at step {stopped_at}" in resumed.stdout + resumed.stderr

    reference = tmp_path / "reference"
    subprocess.run(_command(reference, "--max_steps", str(steps)), check=True, capture_output=True, env=_env())
    assert _losses(out) == _losses(reference)
    a, b = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.time_bound(120)
def test_resume_latest_without_a_previous_run_says_so(tmp_path):
    out = tmp_path / "fresh"
    run = subprocess.run(
        _command(out, "--resume_from_checkpoint", "latest"), capture_output=True, text=True, env=_env(), timeout=100
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"--resume_from_checkpoint latest: no complete checkpoint-<step> folder in {out}" in run.stderr
    assert "starting a fresh run from step 0" in run.stderr


@pytest.mark.time_bound(150)
@pytest.mark.parametrize("steps", [1, 2, 3, 20])
def test_onecycle_smoke_runs_of_any_length(tmp_path, steps):
    """``--max_steps 20`` with the one-cycle schedule and 5% warm-up (one step) divided by zero before."""
    out = tmp_path / f"steps-{steps}"
    run = subprocess.run(
        _command(out, "--max_steps", str(steps), "--lr_schedule", "onecycle", "--warmup_ratio", "0.05"),
        capture_output=True, text=True, env=_env(), timeout=140,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    lrs = [r["lr"] for r in _losses(out)]
    assert len(lrs) == steps and all(lr >= 0 and lr == lr for lr in lrs)


def _checkpoint(tmp_path):
    import mmquant
    from mmquant.training import save_checkpoint

    model = mmquant.create_model("test")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return save_checkpoint(tmp_path, 3, model, opt, trainer_state={"seed": 0}), model, opt


@pytest.mark.parametrize(
    "field,value",
    [
        ("step", "3"),
        ("step", -1),
        ("step", 2.5),
        ("step", None),
        ("num_processes", "1"),
        ("num_processes", 0),
        ("python_random", "abc"),
        ("python_random", [3, "x", None]),
        ("session_commits", "abc"),
        ("session_commits", [1, 2]),
    ],
)
def test_trainer_state_with_wrong_types_is_named(tmp_path, field, value):
    path, model, opt = _checkpoint(tmp_path)
    state_file = path / "trainer_state.json"
    state = json.loads(state_file.read_text()) | {field: value}
    state_file.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=rf"trainer_state.json: field '{field}'=.* is not "):
        load_checkpoint(path, model, opt)


@pytest.mark.parametrize("content", ["[]", '"text"', "3", "{}"])
def test_trainer_state_not_an_object_or_missing_fields(tmp_path, content):
    path, model, opt = _checkpoint(tmp_path)
    (path / "trainer_state.json").write_text(content)
    with pytest.raises(CheckpointError, match="trainer_state.json"):
        load_checkpoint(path, model, opt)

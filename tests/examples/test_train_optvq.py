"""train_optvq.py: smoke run and resume, two processes, bf16. Killed runs resuming exactly (SIGKILL, also
mid-checkpoint) are tested in tests/reliability/test_interrupted_training.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmquant.training import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "optvq" / "train_optvq.py"
SMOKE = ROOT / "examples" / "optvq" / "configs" / "smoke.yaml"
sys.path.insert(0, str(SCRIPT.parent))
import train_optvq  # noqa: E402
from two_process_runs import assert_two_processes_match_one  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them


def _losses(output_dir):
    return [r for r in map(json.loads, (Path(output_dir) / "losses.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.fixture(autouse=True)
def _reset_accelerate():
    from accelerate.state import AcceleratorState, PartialState

    yield
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def test_smoke_then_resume_latest(tmp_path):
    out = tmp_path / "run"
    args = train_optvq.parse_args(["--config", str(SMOKE), "--output_dir", str(out), "--lr_schedule", "constant"])
    result = train_optvq.main(args)
    assert [s for s, _ in list_checkpoints(out)] == [1, 2]
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    assert (out / "samples" / "step-2.png").exists() and (out / "losses.png").exists()
    assert result["steps"] == 2 and result["metrics"][0]["metric"] == "psnr"

    args = train_optvq.parse_args(
        [
            "--config",
            str(SMOKE),
            "--output_dir",
            str(out),
            "--lr_schedule",
            "constant",
            "--max_steps",
            "4",
            "--resume_from_checkpoint",
            "latest",
        ]
    )
    with pytest.raises(ValueError, match="--max_steps"):  # a changed run length cannot continue the same curve
        train_optvq.main(args)
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["step"] == 2


def test_resume_continues_the_step_counter_and_rotates(tmp_path):
    out = tmp_path / "run"
    base = ["--config", str(SMOKE), "--output_dir", str(out), "--max_steps", "5"]
    # stop early by pretending the run is killed after step 2: drop the later checkpoints and the final model
    train_optvq.main(train_optvq.parse_args(base + ["--checkpoints_total_limit", "5"]))
    for step, path in list_checkpoints(out):
        if step > 2:
            shutil.rmtree(path)
    result = train_optvq.main(train_optvq.parse_args(base + ["--resume_from_checkpoint", "latest"]))
    assert result["steps"] == 5
    assert [s for s, _ in list_checkpoints(out)] == [4, 5]  # checkpoints_total_limit 2 (smoke.yaml)
    assert [r["step"] for r in _losses(out)] == [1, 2, 3, 4, 5]


def _run(out, extra=(), wait=True):
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--config",
        str(SMOKE),
        "--output_dir",
        str(out),
        "--max_steps",
        "8",
        "--num_threads",
        "1",
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if wait:
        subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=300)
        return None
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def test_two_processes_with_accelerate_launch_match_one_process(tmp_path):
    args = ["--config", SMOKE, "--max_steps", "2", "--mixed_precision", "no"]
    assert_two_processes_match_one(SCRIPT, args, tmp_path, steps=2)


def test_gradient_accumulation_in_two_processes_matches_one_process(tmp_path):
    """Two micro-batches of 8 per step, split over two processes: the one-process run's curve."""
    args = ["--config", SMOKE, "--max_steps", "2", "--batch_size", "8", "--gradient_accumulation_steps", "2"]
    assert_two_processes_match_one(SCRIPT, args, tmp_path, steps=2)


def test_bf16_mixed_precision_runs(tmp_path):
    args = train_optvq.parse_args(
        ["--config", str(SMOKE), "--output_dir", str(tmp_path / "bf16"), "--mixed_precision", "bf16"]
    )
    result = train_optvq.main(args)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in _losses(tmp_path / "bf16"))
    assert result["steps"] == 2

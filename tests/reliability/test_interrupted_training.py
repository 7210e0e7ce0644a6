"""A real training run (examples/optvq/train_optvq.py, the smoke config: a checkpoint every step, two kept) is
SIGKILLed at seeded random moments, some of them while a checkpoint is being written (the killed sessions write
their checkpoints slowly, see slow_checkpoint_writes.py, so that a kill can land inside a write), and resumed from
``latest`` each time. After every kill each ``checkpoint-*`` folder must be complete and loadable and the newest
checkpoint must never go back; at the end the loss log and the final weights must equal those of an uninterrupted
run with the same seed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmquant.training import latest_checkpoint, list_checkpoints

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "optvq" / "train_optvq.py"
SMOKE = ROOT / "examples" / "optvq" / "configs" / "smoke.yaml"
STEPS = 10
KILLS = 6
CHECKPOINT_FILES = (
    "trainer_state.json",
    "model/config.json",
    "model/model.safetensors",
    "optimizer.safetensors",
    "optimizer.json",
    "scheduler.json",
    "rng_state_0.safetensors",
)


WRITE_DELAY_S = 0.04  # each checkpoint write takes >= 0.25 s (slow_checkpoint_writes.py), so kills can land in it


def _command(out: Path, resume: bool, slow_writes: bool = False) -> list[str]:
    runner = [str(Path(__file__).with_name("slow_checkpoint_writes.py")), str(WRITE_DELAY_S)] if slow_writes else []
    cmd = [sys.executable, *runner, str(SCRIPT), "--config", str(SMOKE), "--output_dir", str(out)]
    cmd += ["--max_steps", str(STEPS), "--eval_steps", str(STEPS), "--num_threads", "1"]
    return cmd + (["--resume_from_checkpoint", "latest"] if resume else [])


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def _losses(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / "losses.jsonl").read_text().splitlines()) if "loss" in r]


def _assert_checkpoints_complete(out: Path) -> None:
    """Every ``checkpoint-*`` folder (complete or not: ``latest`` only looks at complete ones) has all its files,
    readable."""
    for path in sorted(out.glob("checkpoint-*")):
        missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
        assert not missing, f"{path.name} is half-written or half-deleted: missing {missing}"
        state = json.loads((path / "trainer_state.json").read_text())
        assert state["step"] == int(path.name.split("-")[1])
        for name in ("model/model.safetensors", "optimizer.safetensors", "rng_state_0.safetensors"):
            load_file(path / name)
        json.loads((path / "optimizer.json").read_text())
        json.loads((path / "scheduler.json").read_text())


def _kill_during_checkpoint_write(proc: subprocess.Popen, out: Path, rng: random.Random) -> bool:
    """Wait for the n-th checkpoint write of this session (n random in 1-3; its ``.tmp-checkpoint-*`` folder appears)
    and kill somewhere inside it."""
    target, seen = rng.randint(1, 3), set()
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        seen |= {p.name for p in out.glob(".tmp-checkpoint-*")}
        if len(seen) >= target:
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.001)
    return False


def _kill_at_random(proc: subprocess.Popen, out: Path, rng: random.Random) -> bool:
    """Wait until training has started (a loss is logged), then kill somewhere in the next 0.3 s."""
    log = out / "losses.jsonl"
    start = log.stat().st_size if log.exists() else 0
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.stat().st_size != start:
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.002)
    return False


@pytest.mark.time_bound(240)
def test_killed_runs_resume_to_the_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_command(reference, resume=False), check=True, capture_output=True, env=_env(), timeout=200)

    out, rng = tmp_path / "killed", random.Random(0)
    newest, mid_write, kills = 0, 0, 0
    for i in range(KILLS):
        during_write = rng.random() < 0.6
        proc = subprocess.Popen(_command(out, resume=i > 0, slow_writes=True), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env())  # fmt: skip
        killed = (_kill_during_checkpoint_write if during_write else _kill_at_random)(proc, out, rng)
        proc.wait(timeout=60)
        if not killed:  # it finished first: nothing left to interrupt
            break
        kills += 1
        mid_write += bool(list(out.glob(".tmp-checkpoint-*")))  # the kill left a checkpoint unfinished
        _assert_checkpoints_complete(out)
        latest = latest_checkpoint(out)
        step = 0 if latest is None else int(latest.name.split("-")[1])
        assert step >= newest, f"kill {i}: the newest checkpoint went back from step {newest} to {step}"
        newest = step
        assert len(list_checkpoints(out)) <= 2  # checkpoints_total_limit of the smoke config
    print(f"{kills} kills, {mid_write} of them during a checkpoint write, newest checkpoint step {newest}")
    assert kills >= 4 and mid_write >= 1, f"{kills} kills, {mid_write} during a checkpoint write"

    subprocess.run(_command(out, resume=True), check=True, capture_output=True, env=_env(), timeout=200)
    assert _losses(out) == _losses(reference)
    assert [r["step"] for r in _losses(out)] == list(range(1, STEPS + 1))
    a, b = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _assert_checkpoints_complete(out)

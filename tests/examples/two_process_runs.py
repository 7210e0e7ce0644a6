"""The 2-process equivalence check every training script's test uses: the same command under ``accelerate launch
--num_processes 2`` (CPU, gloo) and in one process, with the same global batch; the per-step losses must agree up
to the summation order."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the shipped config for two CPU processes (README, "From this CPU to a cluster"); port 0: any free one
LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--config_file",
    str(ROOT / "examples" / "accelerate_configs" / "cpu_2_processes.yaml"),
    "--main_process_port",
    "0",
]


def step_records(output_dir) -> list[dict]:
    """The per-step records of ``losses.jsonl`` (the evaluation records left out)."""
    lines = (Path(output_dir) / "losses.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def _run_once(cmd, env, timeout: int) -> subprocess.CompletedProcess | None:
    """``cmd`` in its own process group; ``None`` when it outlives ``timeout`` (then every process of the group has
    printed its Python stacks to stderr, through faulthandler on SIGABRT, and was killed)."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER: each process dumps its stacks
        time.sleep(3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        print(f"{' '.join(cmd)}\nhung for {timeout} s; the stacks of its processes:\n{err[-12000:]}", file=sys.stderr)
        return None


def run_script(script, args, output_dir, processes: int, launch=LAUNCH, timeout: int = 300) -> None:
    """``script args --output_dir output_dir`` in one process, or under ``launch`` (``accelerate launch``).

    A run that hangs (a normal one takes 10-30 s here) has its stacks printed and is run once more from scratch: a
    second hang fails the test with both sets of stacks in the captured stderr."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONFAULTHANDLER"] = "1"
    prefix = [sys.executable] if processes == 1 else list(launch)
    cmd = [*prefix, str(script), *map(str, args), "--output_dir", str(output_dir)]
    done = _run_once(cmd, env, timeout)
    if done is None:
        shutil.rmtree(output_dir, ignore_errors=True)
        done = _run_once(cmd, env, timeout)
        assert done is not None, f"{' '.join(cmd)} hung twice ({timeout} s each); stacks on stderr"
        warnings.warn(
            f"{Path(script).name} ({processes} processes) hung once and passed on the second run", stacklevel=2
        )
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr[-4000:]}"


def assert_two_processes_match_one(script, args, tmp_path, steps: int, keys=None, rel: float = 1e-4, launch=LAUNCH):
    """Run ``script`` with ``args`` in two processes and in one; the logged ``keys`` (default: every loss) of every
    step must match."""
    run_script(script, args, tmp_path / "two", 2, launch)
    run_script(script, args, tmp_path / "one", 1)
    two, one = step_records(tmp_path / "two"), step_records(tmp_path / "one")
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, steps + 1))
    keys = keys or [k for k in one[0] if k == "loss" or k.endswith("_loss")]
    for a, b in zip(two, one):  # the global batch is the same; only the summation order differs
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=rel), (a["step"], key, a[key], b[key])
    assert json.loads((tmp_path / "two" / "eval_results.json").read_text())["processes"] == 2

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
import tempfile
import warnings
from pathlib import Path

import psutil
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


def _run_once(cmd, env, timeout: int) -> tuple[subprocess.CompletedProcess, bool]:
    """``cmd`` in its own process group, and whether it outlived ``timeout`` (then every process it started has
    printed its Python stacks to its stderr, through faulthandler on SIGABRT, and was killed).

    The output goes to files, not pipes: ``torchrun`` starts each worker in a session of its own, so a worker that
    outlives the launcher would hold a pipe open and ``communicate()`` would wait for it forever. For the same reason
    the workers are found as the launcher's descendants (``psutil``), not by its process group."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            _kill_tree(proc)
        out.seek(0), err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read()), hung


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGABRT (each Python process prints its stacks: PYTHONFAULTHANDLER), then SIGKILL, to ``proc`` and every
    process it started, in whatever session or group they are."""
    try:
        tree = [psutil.Process(proc.pid)]
        tree += tree[0].children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for sig in (signal.SIGABRT, signal.SIGKILL):
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        psutil.wait_procs(tree, timeout=5)
    proc.wait()


def stacks(stderr: str, limit: int = 12000) -> str:
    """The faulthandler stacks in ``stderr``: each ``Fatal Python error`` / ``Thread`` header and its ``File`` lines,
    without the ``Extension modules:`` lists and progress output around them (those filled the 4,000-character tail a
    CI warning kept, so the workers' frames were lost); the last ``limit`` characters of them, or of ``stderr`` when
    it holds none."""
    heads = ("Fatal Python error", "Thread 0x", "Current thread 0x", "  File ", "  <no Python frame>")
    kept = [line for line in stderr.splitlines() if line.startswith(heads)]
    return ("\n".join(kept) if kept else stderr)[-limit:]


def run_script(script, args, output_dir, processes: int, launch=LAUNCH, timeout: int = 300) -> None:
    """``script args --output_dir output_dir`` in one process, or under ``launch`` (``accelerate launch``).

    A run that hangs (a normal one takes 10-30 s here) is stopped, its processes' stacks kept, and run once more from
    scratch: a second hang fails the test with both sets of stacks in its message; a pass warns with the first."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONFAULTHANDLER"] = "1"
    prefix = [sys.executable] if processes == 1 else list(launch)
    cmd = [*prefix, str(script), *map(str, args), "--output_dir", str(output_dir)]
    done, hung = _run_once(cmd, env, timeout)
    if hung:
        first = stacks(done.stderr)
        shutil.rmtree(output_dir, ignore_errors=True)
        done, hung = _run_once(cmd, env, timeout)
        assert not hung, (
            f"{' '.join(cmd)} hung twice ({timeout} s each); the stacks of the first run:\n{first}\n"
            f"and of the second:\n{stacks(done.stderr)}"
        )
        warnings.warn(
            f"{Path(script).name} ({processes} processes) hung once ({timeout} s) and passed on the second run; "
            f"the stacks of its processes when it was stopped:\n{first}",
            stacklevel=2,
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

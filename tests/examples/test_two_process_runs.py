"""The hang guard of the 2-process tests (``two_process_runs``): a run under ``accelerate launch`` that hangs is
stopped with every process's stacks, its workers (each in a session of its own, holding the launcher's output open)
included, and leaves no process behind; a run that hangs once and then passes warns with those stacks.

A CI run waited 90 minutes on the earlier guard: it killed the launcher's process group and then read the output
pipes, which the workers (outside that group) still held open."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from two_process_runs import LAUNCH, _run_once, run_script  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess runs: CI runs them (-m "not gpu"); the fast default skips them

# rank 1 sleeps while rank 0 waits for it at a barrier; with a marker file given, only while the marker is absent
SCRIPT = """
import sys, time
from pathlib import Path
from accelerate import Accelerator

acc = Accelerator(cpu=True)
marker = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--output_dir" else None
first = marker is None or not marker.exists()
acc.wait_for_everyone()
if acc.process_index == 1 and first:
    if marker is not None:
        marker.touch()
    time.sleep(10_000)  # the hang
acc.wait_for_everyone()
"""


def _processes_running(script: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if str(script) in (p.info["cmdline"] or []):
            found.append(p)
    return found


def test_a_hung_two_process_run_is_stopped_with_every_stack_and_leaves_no_process(tmp_path):
    script = tmp_path / "hangs.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    done, hung = _run_once([*LAUNCH, str(script)], env, timeout=20)
    assert hung
    # the sleeping worker's own stack (it is in another session than the launcher) and the launcher's
    assert "in <module>" in done.stderr and str(script) in done.stderr, done.stderr[-3000:]
    assert "torch/distributed" in done.stderr, done.stderr[-3000:]
    assert _processes_running(script) == []


def test_a_run_that_hangs_once_is_run_again_and_warns_with_the_stacks(tmp_path):
    script = tmp_path / "hangs_once.py"
    script.write_text(SCRIPT)
    with pytest.warns(UserWarning, match=r"(?s)hung once.*hangs_once\.py"):
        run_script(script, [tmp_path / "marker"], tmp_path / "out", 2, timeout=20)
    assert (tmp_path / "marker").exists()
    assert _processes_running(script) == []

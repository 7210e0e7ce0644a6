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
from two_process_runs import LAUNCH, _run_once, run_script, stacks  # noqa: E402

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
    with pytest.warns(UserWarning, match=r"(?s)hung once") as caught:
        run_script(script, [tmp_path / "marker"], tmp_path / "out", 2, timeout=20)
    warning = str(caught[0].message)
    # the sleeping worker's frame and the launcher's, not the extension-module lists printed after each stack
    assert f'File "{script}", line' in warning and "torch/distributed" in warning, warning
    assert "Extension modules" not in warning
    assert (tmp_path / "marker").exists()
    assert _processes_running(script) == []


def test_stacks_keep_every_frame_and_drop_the_module_lists():
    worker = "Fatal Python error: Aborted\n\nCurrent thread 0x1 (most recent call first):\n"
    worker += '  File "w.py", line 3 in <module>\n'
    modules = "\nExtension modules: " + ", ".join(f"m{i}" for i in range(2000)) + " (total: 2000)\n"
    launcher = 'Thread 0x2 (most recent call first):\n  File "/x/torch/distributed/run.py", line 9 in main\n'
    text = stacks(worker + modules + "train: 3/10 [00:01<00:02]\r" + launcher + modules)
    assert text.splitlines() == [
        "Fatal Python error: Aborted",
        "Current thread 0x1 (most recent call first):",
        '  File "w.py", line 3 in <module>',
        "Thread 0x2 (most recent call first):",
        '  File "/x/torch/distributed/run.py", line 9 in main',
    ]
    assert stacks("no stacks here, only an error", limit=8) == "an error"

"""The ending every training script shares: the main process saves the final model (and tokenizer, pipeline...),
scores it, and writes ``eval_results.json`` with the run's bookkeeping; every process waits, then the trackers
close."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .provenance import command_line, save_run_result
from .run_state import TrainingRun

__all__ = ["finish_run"]


def finish_run(
    accelerator,
    run: TrainingRun,
    args,
    output_dir: str | Path,
    *,
    started: float,
    saved: Iterable[tuple[object, str]],
    description: dict,
    evaluate: Callable[[], dict],
) -> dict:
    """On the main process: ``save_pretrained`` each ``(object, subfolder)`` of ``saved`` under ``output_dir``
    (``""``: the folder itself), then the result ``description`` + the bookkeeping (``steps``, ``processes``,
    ``train_seconds_this_session`` since ``started``, ``command``, ``commit``, ``session_commits``) + what
    ``evaluate()`` returns (the test ``metrics``...), written to ``output_dir/eval_results.json`` and merged into
    ``--results_file`` under ``--run_name`` when given. Returns the result (``{}`` on the other processes)."""
    output_dir = Path(output_dir)
    result = {}
    if accelerator.is_main_process:
        for obj, folder in saved:
            obj.save_pretrained(output_dir / folder)
        bookkeeping = {
            "steps": run.step,
            "processes": accelerator.num_processes,
            "train_seconds_this_session": round(time.time() - started, 1),
            "command": command_line(),
            "commit": run.commit,
            "session_commits": run.session_commits,
        }
        result = {**description, **bookkeeping, **evaluate()}
        save_run_result(output_dir, result, args.results_file, args.run_name)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result

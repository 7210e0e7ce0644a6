"""Ctrl-C and SIGTERM (a preempted cluster job) during training: finish the step, save a checkpoint, exit cleanly.

    stop = GracefulStop(accelerator)
    while step < args.max_steps:
        ...                                       # one optimizer step
        stopping = stop.requested()
        if stopping or step % args.checkpointing_steps == 0 or step == args.max_steps:
            save_run_checkpoint(...)
        if stopping:
            stop.exit(step)                       # message on stderr, then SystemExit(128 + signal)
    stop.close()

A second signal of the same kind stops at once (the usual behaviour: Ctrl-C raises ``KeyboardInterrupt``). With
several processes the request is all-reduced every step, so every process saves and stops at the same step even when
only one of them was signalled.
"""

from __future__ import annotations

import signal
import sys
import threading

import torch

__all__ = ["GracefulStop"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Installs SIGINT/SIGTERM handlers (main thread only) that record the signal instead of stopping the loop."""

    def __init__(self, accelerator=None):
        self.accelerator = accelerator
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # asked twice: stop now
            self.close()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name} received: finishing this step and saving a checkpoint "
            "(send it again to stop at once).",
            file=sys.stderr,
            flush=True,
        )

    def requested(self) -> bool:
        """Whether any process was asked to stop (an all-reduce with several processes: call it on every one)."""
        flag = self.signum is not None
        acc = self.accelerator
        if acc is not None and acc.num_processes > 1:
            import torch.distributed as dist

            t = torch.tensor([float(self.signum or 0)], device=acc.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            if self.signum is None and t.item() > 0:
                self.signum = int(t.item())
            flag = t.item() > 0
        return flag

    def close(self) -> None:
        """Restore the previous handlers."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def exit(self, step: int, output_dir=None) -> None:
        """Report where the run stopped and how to resume, then ``SystemExit(128 + signal)``."""
        self.close()
        name = signal.Signals(self.signum or signal.SIGTERM).name
        where = f" in {output_dir}" if output_dir is not None else ""
        main = self.accelerator is None or self.accelerator.is_main_process
        if main:
            print(
                f"stopped by {name} at step {step}: checkpoint-{step} saved{where}; resume with "
                "--resume_from_checkpoint latest (and the same arguments).",
                file=sys.stderr,
                flush=True,
            )
        if self.accelerator is not None:
            self.accelerator.end_training()
        raise SystemExit(128 + (self.signum or signal.SIGTERM))

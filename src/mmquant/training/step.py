"""One micro-step of an optimizer the way every training script takes it inside ``accelerator.accumulate()``, and
the figures it logs for an optimizer step (the mean over its micro-batches)."""

from __future__ import annotations

__all__ = ["add_micro_batch", "backward_and_step"]


def backward_and_step(accelerator, loss, optimizer, parameters=None, max_grad_norm: float | None = None) -> None:
    """``accelerator.backward(loss)``, the gradients of ``parameters`` clipped to ``max_grad_norm`` (when set) on the
    micro-step that updates, then ``optimizer.step()`` and ``zero_grad()`` (which accelerate skips until the last
    micro-batch of ``--gradient_accumulation_steps``)."""
    accelerator.backward(loss)
    if max_grad_norm and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()


def add_micro_batch(totals: dict, record: dict, accumulation: int) -> dict:
    """Add one micro-batch's ``record`` (floats) to ``totals``: after ``accumulation`` of them, their mean."""
    for key, value in record.items():
        totals[key] = totals.get(key, 0.0) + value / accumulation
    return totals

"""Atomic, rotated, exactly resumable checkpoints: ``<output_dir>/checkpoint-<step>/``.

A checkpoint is written under a temporary name (``.tmp-checkpoint-<step>``) and renamed into place only once every
file is on disk, ``trainer_state.json`` last, so a run killed mid-write never leaves a ``checkpoint-*`` directory
that ``latest`` would pick and fail to load. Everything is stored without pickle: the model with
``save_pretrained`` (safetensors), optimizer tensors in safetensors with their structure in JSON, the scheduler and
Python RNG as JSON, each process's torch RNG state in its own safetensors file. Restoring any of it is all-or-error:
a missing or corrupt piece raises :class:`CheckpointError`, never a warning.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "CheckpointError",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "resolve_resume_path",
    "save_checkpoint",
]

_NAME = re.compile(r"^checkpoint-(\d+)$")
_STATE = "trainer_state.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or does not match the run that tries to resume from it."""


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir`` as ``(step, path)``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_dir() and (path / _STATE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in ``output_dir``, or None."""
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def resolve_resume_path(resume_from_checkpoint: str | None, output_dir: str | Path) -> Path | None:
    """``--resume_from_checkpoint``: None, ``"latest"`` (None when there is no checkpoint yet) or a path."""
    if not resume_from_checkpoint:
        return None
    if resume_from_checkpoint == "latest":
        return latest_checkpoint(output_dir)
    path = Path(resume_from_checkpoint)
    if not (path / _STATE).is_file():
        raise CheckpointError(
            f"resume_from_checkpoint={resume_from_checkpoint!r}: not a complete checkpoint directory (no {_STATE}); "
            f"pass 'latest' or a checkpoint-<step> folder."
        )
    return path


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(checkpoint: Path) -> None:
    """Delete a checkpoint: renamed away first (atomic), so a kill during the deletion never leaves a half-deleted
    ``checkpoint-*`` that looks complete."""
    doomed = checkpoint.with_name(f".deleting-{checkpoint.name}")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(checkpoint, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _optimizer_to_files(optimizer, directory: Path) -> None:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    save_file(tensors, directory / "optimizer.safetensors")
    meta = {"param_groups": state["param_groups"], "scalars": scalars, "param_ids": list(state["state"])}
    (directory / "optimizer.json").write_text(json.dumps(meta))


def _optimizer_from_files(optimizer, directory: Path) -> None:
    meta = json.loads((directory / "optimizer.json").read_text())
    tensors = load_file(directory / "optimizer.safetensors")
    state: dict = {pid: {} for pid in meta["param_ids"]}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state[int(pid)][name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state[int(pid)][name] = value
    groups = meta["param_groups"]
    for group, current in zip(groups, optimizer.param_groups):  # JSON has no tuples (e.g. Adam's betas)
        for key, value in group.items():
            if isinstance(current.get(key), tuple) and isinstance(value, list):
                group[key] = tuple(value)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    model,
    optimizer,
    scheduler=None,
    trainer_state: dict | None = None,
    total_limit: int | None = None,
    accelerator=None,
    extras: dict | None = None,
) -> Path:
    """Write ``checkpoint-<step>`` atomically and keep at most ``total_limit`` checkpoints (None: all).

    ``extras`` maps a name to ``(module, optimizer or None)`` for training-only parts beside the model (e.g. a
    GAN critic): their weights and optimizer go into ``<name>/`` in the same atomic write.

    With an ``accelerator`` of several processes every process calls this: each writes its RNG state, the main
    process the rest.
    """
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    tmp = root / f".tmp-checkpoint-{step}"
    is_main = accelerator is None or accelerator.is_main_process
    rank = 0 if accelerator is None else accelerator.process_index
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    save_file({"torch": torch.get_rng_state()}, tmp / f"rng_state_{rank}.safetensors")
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if is_main:
        _unwrap(model).save_pretrained(tmp / "model", safe_serialization=True)
        _optimizer_to_files(optimizer, tmp)
        if scheduler is not None:
            (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
        for name, (module, extra_optimizer) in (extras or {}).items():
            (tmp / name).mkdir()
            weights = {k: v.detach().cpu().contiguous() for k, v in _unwrap(module).state_dict().items()}
            save_file(weights, tmp / name / "model.safetensors")
            if extra_optimizer is not None:
                _optimizer_to_files(extra_optimizer, tmp / name)
        state = {
            "step": step,
            "num_processes": 1 if accelerator is None else accelerator.num_processes,
            "python_random": _encode_random(random.getstate()),
            **(trainer_state or {}),
        }
        (tmp / _STATE).write_text(json.dumps(state, indent=2))  # last: its presence marks a complete checkpoint
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        if total_limit is not None and total_limit > 0:
            for _, old in list_checkpoints(root)[:-total_limit]:
                _remove(old)
        for stale in root.glob(".deleting-checkpoint-*"):  # left by a run killed while removing
            shutil.rmtree(stale, ignore_errors=True)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: str | Path, model, optimizer, scheduler=None, accelerator=None, extras=None) -> dict:
    """Restore model weights, optimizer, scheduler, ``extras`` (as given to :func:`save_checkpoint`) and this
    process's RNG from ``path``; returns the trainer state.

    Raises :class:`CheckpointError` naming what is wrong when anything cannot be restored exactly.
    """
    path = Path(path)
    try:
        state = json.loads((path / _STATE).read_text())
    except (OSError, ValueError) as err:  # missing, not UTF-8 text, or not JSON
        raise CheckpointError(f"checkpoint {path}: cannot read {_STATE} ({err}).") from err
    _check_state_fields(path, state)
    processes = 1 if accelerator is None else accelerator.num_processes
    if state.get("num_processes", 1) != processes:
        raise CheckpointError(
            f"checkpoint {path} was written by {state.get('num_processes')} process(es), this run has {processes}: "
            f"the RNG and data position cannot be restored exactly; resume with the same number of processes."
        )
    rank = 0 if accelerator is None else accelerator.process_index
    try:
        weights = load_file(path / "model" / "model.safetensors")
        missing, unexpected = _unwrap(model).load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {path}: weights do not match the model (missing {missing}, unexpected {unexpected})."
            )
        _optimizer_from_files(optimizer, path)
        if scheduler is not None:
            scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
        for name, (module, extra_optimizer) in (extras or {}).items():
            _unwrap(module).load_state_dict(load_file(path / name / "model.safetensors"), strict=True)
            if extra_optimizer is not None:
                _optimizer_from_files(extra_optimizer, path / name)
        torch.set_rng_state(load_file(path / f"rng_state_{rank}.safetensors")["torch"])
        random.setstate(_decode_random(state["python_random"]))
    except CheckpointError:
        raise
    except Exception as err:  # any partial restore would silently change the run: refuse it
        raise CheckpointError(
            f"checkpoint {path}: cannot restore the training state ({type(err).__name__}: {err})."
        ) from err
    return state


def _is_count(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# The fields a resume reads, with what each must be; a wrong type is named with the file instead of failing later.
_STATE_FIELDS = {
    "step": (lambda v: _is_count(v, 0), "an integer >= 0"),
    "num_processes": (lambda v: _is_count(v, 1), "an integer >= 1"),
    "python_random": (
        lambda v: isinstance(v, list) and len(v) == 3 and isinstance(v[1], list) and _is_count(v[0], 0),
        "[version, [state...], gauss] as written by random.getstate()",
    ),
    "session_commits": (lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v), "a list of strings"),
}
_REQUIRED_STATE_FIELDS = ("step", "python_random")


def _check_state_fields(path: Path, state) -> None:
    """``CheckpointError`` naming ``trainer_state.json`` and the field whose type or value is wrong."""
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: {_STATE} holds a {type(state).__name__}, expected a JSON object.")
    for name, (ok, expected) in _STATE_FIELDS.items():
        if name not in state:
            if name in _REQUIRED_STATE_FIELDS:
                raise CheckpointError(f"checkpoint {path / _STATE}: field {name!r} is missing; expected {expected}.")
            continue
        if not ok(state[name]):
            raise CheckpointError(
                f"checkpoint {path / _STATE}: field {name!r}={state[name]!r} is not {expected}; the file was edited "
                "or damaged: resume from another checkpoint-<step> folder or start fresh."
            )


def _encode_random(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _decode_random(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)

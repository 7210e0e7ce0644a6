"""Checkpoint helpers: atomic layout, rotation, exact restore of the training state, refusal of bad checkpoints."""

import json
import random

import pytest
import torch

import mmquant
from mmquant.training import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint


def _setup():
    model = mmquant.create_model("test")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=10)
    model(torch.rand(4, 3, 16, 16)).loss.backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_restore_is_exact_including_rng(tmp_path):
    model, optimizer, scheduler = _setup()
    save_checkpoint(tmp_path, 1, model, optimizer, scheduler, {"seed": 3})
    expected = (torch.rand(5), random.random())
    other_model, other_opt, other_sched = _setup()  # different weights and states
    torch.manual_seed(123)
    random.seed(123)
    state = load_checkpoint(latest_checkpoint(tmp_path), other_model, other_opt, other_sched)
    assert state["step"] == 1 and state["seed"] == 3
    assert torch.equal(torch.rand(5), expected[0]) and random.random() == expected[1]
    for a, b in zip(model.state_dict().values(), other_model.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = optimizer.state_dict(), other_opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for pid in sa["state"]:
        for key, value in sa["state"][pid].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][pid][key]))
    assert scheduler.state_dict() == other_sched.state_dict()


def test_rotation_and_incomplete_checkpoints_are_ignored(tmp_path):
    model, optimizer, scheduler = _setup()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, optimizer, scheduler, total_limit=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    # a half-written checkpoint (killed before the rename) and a directory without its state file are never picked
    (tmp_path / ".tmp-checkpoint-4").mkdir()
    (tmp_path / "checkpoint-5").mkdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
    assert not list(tmp_path.glob("checkpoint-*/*.bin")) and not list(tmp_path.rglob("*.pt"))


@pytest.mark.parametrize("damage", ["rng", "weights", "state", "processes"])
def test_damaged_checkpoint_is_an_error_not_a_warning(tmp_path, damage):
    model, optimizer, scheduler = _setup()
    path = save_checkpoint(tmp_path, 1, model, optimizer, scheduler)
    if damage == "rng":
        (path / "rng_state_0.safetensors").unlink()
    elif damage == "weights":
        (path / "model" / "model.safetensors").write_bytes(b"not safetensors")
    elif damage == "state":
        (path / "trainer_state.json").write_text("{")
    else:
        state = json.loads((path / "trainer_state.json").read_text())
        (path / "trainer_state.json").write_text(json.dumps({**state, "num_processes": 2}))
    with pytest.raises(CheckpointError):
        load_checkpoint(path, *_setup())

"""No code path unpickles untrusted data: weights and training state are safetensors (plus JSON), any ``torch.load``
passes ``weights_only=True``, and a malicious pickle planted where a checkpoint file is expected is refused without
running its payload (the payload would create a marker file)."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("src", "examples", "benchmarks")  # the dataset builders are in src/mmquant/dataset_scripts


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file exists afterwards iff the pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _malicious(marker: Path) -> bytes:
    return pickle.dumps({"weight": _Payload(marker)})


def _python_files():
    for folder in CODE_DIRS:
        yield from (ROOT / folder).rglob("*.py")


def test_no_unsafe_deserialisation_in_the_code():
    """Every ``torch.load`` says ``weights_only=True``; no ``pickle.load(s)`` / ``joblib`` / ``allow_pickle=True``
    outside the MNIST reader's array-only unpickler."""
    offenders = []
    for path in _python_files():
        text = path.read_text()
        rel = path.relative_to(ROOT).as_posix()
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in call.group(1):
                offenders.append(f"{rel}: {call.group(0)}")
        for pattern in (r"pickle\.loads?\(", r"import joblib|joblib\.load", r"allow_pickle\s*=\s*True", r"dill\.load"):
            if re.search(pattern, text):
                offenders.append(f"{rel}: {pattern}")
        if re.search(r"pickle\.Unpickler", text) and rel != "src/mmquant/data/mnist.py":
            offenders.append(f"{rel}: an unpickler outside data/mnist.py")
    assert not offenders, offenders


def _saved_optvq(folder: Path) -> Path:
    import mmquant

    mmquant.create_model("test").save_pretrained(folder)
    return folder


@pytest.mark.parametrize("use_safetensors", [None, False])
def test_planted_pickle_weights_are_refused_by_from_pretrained(tmp_path, use_safetensors):
    from transformers import AutoModel

    marker = tmp_path / "PWNED"
    folder = _saved_optvq(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(_malicious(marker))
    kwargs = {} if use_safetensors is None else {"use_safetensors": use_safetensors}
    # default: safetensors only, the .bin is not even opened; use_safetensors=False: transformers' weights_only load
    with pytest.raises((OSError, pickle.UnpicklingError), match="model.safetensors|Weights only load failed"):
        AutoModel.from_pretrained(folder, **kwargs)
    assert not marker.exists()


@pytest.mark.parametrize(
    "planted",
    ["model/model.safetensors", "optimizer.safetensors", "rng_state_0.safetensors", "critic/model.safetensors"],
)
def test_planted_pickle_in_a_training_checkpoint_is_refused(tmp_path, planted):
    import mmquant
    from mmquant.training import CheckpointError, load_checkpoint, save_checkpoint

    marker = tmp_path / "PWNED"
    model, critic = mmquant.create_model("test"), torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.rand(2, 3, 16, 16)).loss.backward()
    optimizer.step()
    extras = {"critic": (critic, None)}
    path = save_checkpoint(tmp_path / "run", 1, model, optimizer, extras=extras)
    (path / planted).write_bytes(_malicious(marker))
    with pytest.raises(CheckpointError, match=f"checkpoint {re.escape(str(path))}"):
        load_checkpoint(path, model, optimizer, extras=extras)
    assert not marker.exists()


def test_planted_pickle_as_a_trainer_state_is_refused(tmp_path):
    import mmquant
    from mmquant.training import CheckpointError, load_checkpoint, save_checkpoint

    marker = tmp_path / "PWNED"
    model = mmquant.create_model("test")
    optimizer = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path / "run", 1, model, optimizer)
    (path / "trainer_state.json").write_bytes(_malicious(marker))
    with pytest.raises(CheckpointError, match="trainer_state.json"):
        load_checkpoint(path, model, optimizer)
    assert not marker.exists()
    json.loads((path / "optimizer.json").read_text())  # the rest of the checkpoint is plain JSON


def test_planted_pickle_as_inception_weights_is_refused(tmp_path):
    from mmquant.modules.vision_encoder import _read_state_dict

    marker = tmp_path / "PWNED"
    weights = tmp_path / "inception_v3.pth"
    weights.write_bytes(_malicious(marker))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        _read_state_dict(str(weights))
    assert not marker.exists()


def test_planted_pickle_as_the_mnist_file_is_refused(tmp_path):
    import io

    from mmquant.data.mnist import _ArrayUnpickler

    marker = tmp_path / "PWNED"
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _ArrayUnpickler(io.BytesIO(_malicious(marker))).load()
    assert not marker.exists()

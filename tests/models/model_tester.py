"""The tests every model passes, diffusers-style: a mixin applied to each model family with its registry's tiny
``*-test`` size (``mmquant.models.registry``), so no test re-declares a tiny config.

A family's test class sets ``size`` (the registry name) and ``forward_inputs`` (a batch for ``forward``), and lists
in ``compared`` the per-example outputs that must not depend on the rest of the batch.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel
from transformers.utils import ModelOutput

import mmquant
from mmquant.limits import MAX_CONFIG_SIZE

MAX_TINY_PARAMETERS = 100_000  # a tiny size builds and runs in well under a second on one CPU thread


def images(model_config, batch: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """``(batch, channels, size, size)`` images in [-1, 1] with some structure (a random walk, not noise)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, channels, size, size, generator=generator).cumsum(-1)
    return (x / x.amax(dim=(1, 2, 3), keepdim=True)) * 2 - 1


def captions(batch: int, length: int, vocab_size: int, pad_token_id: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Right-padded token ids ``(batch, length)`` (no id equals the pad id before the padding) and their mask."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, length + 1, (batch,), generator=generator)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    ids = torch.randint(pad_token_id + 1, vocab_size, (batch, length), generator=generator)
    return ids * mask + pad_token_id * (1 - mask), mask


class ModelTesterMixin:
    size: str  # the registry's tiny size
    auto_class = AutoModel
    compared: tuple[str, ...] = ()  # per-example outputs, equal alone and in a batch (eval mode)
    batch_size = 3

    def forward_inputs(self, model, batch: int, seed: int = 0) -> dict:
        raise NotImplementedError

    def make_model(self):
        torch.manual_seed(0)
        return mmquant.create_model(self.size).eval()

    def run(self, model, inputs: dict, **kwargs):
        with torch.no_grad():
            return model(**inputs, **kwargs)

    # ------------------------------------------------------------------ the shared tests
    def test_tiny_size_is_small(self):
        model = self.make_model()
        assert sum(p.numel() for p in model.parameters()) < MAX_TINY_PARAMETERS

    def test_config_size_cap_is_checked_before_building(self):
        config = mmquant.get_config(self.size)
        config.huge_field = MAX_CONFIG_SIZE + 1
        with pytest.raises(ValueError, match="huge_field=.*MAX_CONFIG_SIZE"):
            type(self.make_model())(config)

    def test_auto_classes_dispatch(self, tmp_path):
        model = self.make_model()
        assert type(AutoConfig.for_model(model.config.model_type)) is type(model.config)
        assert type(self.auto_class.from_config(model.config)) is type(model)
        model.save_pretrained(tmp_path)
        assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model.config.model_type
        assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
        assert type(self.auto_class.from_pretrained(tmp_path)) is type(model)

    def test_save_load_round_trip(self, tmp_path):
        model = self.make_model()
        inputs = self.forward_inputs(model, self.batch_size)
        expected = self.run(model, inputs)
        model.save_pretrained(tmp_path)
        loaded = self.auto_class.from_pretrained(tmp_path).eval()
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        out = self.run(loaded, inputs)
        for name in self.compared:
            torch.testing.assert_close(getattr(out, name), getattr(expected, name), rtol=1e-5, atol=1e-5)

    def test_batch_equivalence(self):
        model = self.make_model()
        inputs = self.forward_inputs(model, self.batch_size)
        full = self.run(model, inputs)
        for i in range(self.batch_size):
            single = self.run(model, {k: v[i : i + 1] for k, v in inputs.items()})
            for name in self.compared:
                torch.testing.assert_close(getattr(single, name)[0], getattr(full, name)[i], rtol=1e-4, atol=1e-5)

    def test_tuple_and_dataclass_outputs_agree(self):
        model = self.make_model()
        inputs = self.forward_inputs(model, self.batch_size)
        out = self.run(model, inputs)
        assert isinstance(out, ModelOutput)
        as_tuple = out.to_tuple()
        assert len(as_tuple) == len(out.keys()) and all(a is out[k] for a, k in zip(as_tuple, out.keys()))
        if "return_dict" in model.forward.__code__.co_varnames:
            plain = self.run(model, inputs, return_dict=False)
            assert isinstance(plain, tuple) and len(plain) == len(as_tuple)
            for a, b in zip(plain, as_tuple):
                torch.testing.assert_close(a, b)

    def test_bf16_forward_is_finite(self):
        model = self.make_model().to(torch.bfloat16)
        out = self.run(model, self.forward_inputs(model, self.batch_size))
        for name in self.compared:
            value = getattr(out, name)
            if value.is_floating_point():
                assert value.dtype == torch.bfloat16 and torch.isfinite(value).all(), name

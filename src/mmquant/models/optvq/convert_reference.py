"""Convert a checkpoint of the reference OptVQ code (github.com/zbr17/OptVQ, "Preventing Local Pitfalls in Vector
Quantization via Optimal Transport", arXiv:2412.15195) into an :class:`OptVQModel`.

The reference's ImageNet tokenizers are taming-transformers' VQGAN encoder/decoder
(``optvq.models.backbone.diffusion``) around ``VectorQuantizerSinkhorn`` (or ``VectorQuantizer`` for its VQ baseline).
mmquant's ``"vqgan"`` backbone is the same network in diffusers' module layout, so a conversion is a renaming of the
state dict (plus 1x1 attention convolutions stored as linear layers). Two checkpoint layouts are read:

* the Hub layout of the released weights (``VQModelHF.save_pretrained``: ``config.json`` holding the ``encoder``,
  ``decoder``, ``quantize`` and ``loss`` arguments, and ``model.safetensors`` with keys under ``model.``);
* a training checkpoint (``torch.save`` with the state dict under ``"model"`` or ``"state_dict"``, or a bare state
  dict, or a ``.safetensors`` file) together with its YAML config (``configs/imagenet/optvq_256_f16_h4.yaml``
  style, or ``configs/optvq.yaml`` with ``autoencoder`` at the top).

Keys under ``loss.`` (LPIPS and discriminator weights) are training-only and dropped. The reference assigns codes by
Sinkhorn over the batch also at inference; the converted quantizer keeps that (``sinkhorn_at_inference=True``), so it
returns the reference's codes. Set ``model.quantizer.sinkhorn_at_inference = False`` for batch-independent nearest
codes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import Tensor

from .configuration_optvq import DEFAULT_QUANTIZER_CONFIG, OptVQConfig

__all__ = [
    "config_from_reference",
    "convert_reference_state_dict",
    "load_reference_checkpoint",
    "model_from_reference",
]

_QUANTIZERS = {"VectorQuantizerSinkhorn": "sinkhorn", "optvq": "sinkhorn", "VectorQuantizer": "vq", "basevq": "vq"}
_NORMALIZE = {"all": "all", "dim": "dim", "null": "none"}
# mmquant state entries the reference has no counterpart for (kept at their initial values)
_MMQUANT_ONLY = ("quantizer.initialized",)
_RESNET_PARTS = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "nin_shortcut": "conv_shortcut",
}
_ATTENTION_PARTS = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


# ---------------------------------------------------------------------------------------------------- config
def _params(section: dict, name: str) -> dict:
    """``{"target": ..., "params": {...}}`` (YAML) or the arguments themselves (Hub ``config.json``)."""
    if not isinstance(section, dict):
        raise ValueError(f"reference config: {name!r} must be a mapping, got {type(section).__name__}.")
    return dict(section.get("params", section)) if "target" in section else dict(section)


def _autoencoder_section(reference: dict) -> tuple[dict, str]:
    """The reference config's autoencoder arguments and its quantizer class (or Hub ``quantize_type``)."""
    if "model" in reference and isinstance(reference["model"], dict) and "autoencoder" in reference["model"]:
        reference = reference["model"]
    if "autoencoder" in reference:  # YAML: autoencoder: {target, params: {encoder, decoder, quantize, loss}}
        params = _params(reference["autoencoder"], "autoencoder")
        quantize = params.get("quantize", {})
        kind = str(quantize.get("target", "")).rsplit(".", 1)[-1]
    elif {"encoder", "decoder", "quantize"} <= reference.keys():  # Hub config.json of VQModelHF
        params, kind = reference, reference.get("quantize_type", "optvq")
    else:
        raise ValueError(
            "reference config: expected the reference's YAML (with model.autoencoder or autoencoder) or the Hub "
            f"config.json of VQModelHF (with encoder, decoder, quantize); got keys {sorted(reference)}."
        )
    if kind not in _QUANTIZERS:
        raise ValueError(
            f"reference config: quantizer {kind!r} is not convertible; expected one of {sorted(_QUANTIZERS)}."
        )
    return params, _QUANTIZERS[kind]


def config_from_reference(reference: dict, norm_num_groups: int = 32) -> OptVQConfig:
    """The :class:`OptVQConfig` of a reference model config (a parsed YAML or Hub ``config.json``).

    ``norm_num_groups``: the reference hard-codes 32 group-norm groups; another value only for models built with a
    patched ``Normalize`` (as the reduced-width parity fixture).
    """
    params, quantizer_type = _autoencoder_section(reference)
    enc, dec = _params(params["encoder"], "encoder"), _params(params["decoder"], "decoder")
    q = _params(params["quantize"], "quantize")
    for key in ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "z_channels", "resolution"):
        if key not in enc:
            raise ValueError(f"reference config: encoder.{key} is missing; the taming Encoder needs it.")
        if list(_as_list(enc[key])) != list(_as_list(dec.get(key, enc[key]))):
            raise ValueError(
                f"reference config: encoder.{key}={enc[key]!r} differs from decoder.{key}={dec.get(key)!r}; mmquant's "
                "vqgan backbone mirrors one setting, so the two must agree."
            )
    checks = {
        "encoder.double_z": (enc.get("double_z", True), False),
        "encoder.resamp_with_conv": (enc.get("resamp_with_conv", True), True),
        "decoder.give_pre_end": (dec.get("give_pre_end", False), False),
        "use_connector": (params.get("use_connector", True), True),
        "encoder.ch_mult[0]": (list(enc["ch_mult"])[0], 1),
        "quantize.use_norm": (q.get("use_norm", False), False),
    }
    for name, (value, expected) in checks.items():
        if value != expected:
            raise ValueError(f"reference config: {name}={value!r} is not supported; expected {expected!r}.")
    in_channels = enc.get("in_channels", 3)
    if dec.get("out_ch", in_channels) != in_channels:
        raise ValueError(
            f"reference config: decoder.out_ch={dec.get('out_ch')!r} differs from encoder.in_channels={in_channels}."
        )
    if "e_dim" not in q or "n_e" not in q:
        raise ValueError("reference config: quantize.e_dim and quantize.n_e are required.")
    quantizer = {
        "type": quantizer_type,
        "codebook_size": int(q["n_e"]),
        "num_heads": int(q.get("num_head", 1)),
        "beta": float(q.get("beta", 1.0)),
        "use_affine": bool(q.get("use_proj", True)),
    }
    if quantizer_type == "sinkhorn":
        mode = q.get("normalize_mode", "all")
        if mode not in _NORMALIZE:
            raise ValueError(
                f"reference config: quantize.normalize_mode={mode!r}; expected one of {list(_NORMALIZE)}."
            )
        quantizer.update(
            epsilon=float(q.get("epsilon", DEFAULT_QUANTIZER_CONFIG["epsilon"])),
            n_iters=int(q.get("n_iters", DEFAULT_QUANTIZER_CONFIG["n_iters"])),
            normalize=_NORMALIZE[mode],
            sinkhorn_at_inference=True,  # the reference assigns by Sinkhorn in eval mode too
        )
    loss = _params(params.get("loss", {}), "loss")
    return OptVQConfig(
        image_size=int(enc["resolution"]),
        in_channels=int(in_channels),
        backbone="vqgan",
        block_out_channels=[int(enc["ch"]) * int(m) for m in enc["ch_mult"]],
        latent_channels=int(enc["z_channels"]),
        layers_per_block=int(enc["num_res_blocks"]),
        norm_num_groups=norm_num_groups,
        attention_resolutions=[int(r) for r in _as_list(enc["attn_resolutions"])],
        embed_dim=int(q["e_dim"]),
        quantizer_config=quantizer,
        reconstruction_l1_weight=float(loss.get("loss_l1_weight", 1.0)),
        reconstruction_l2_weight=float(loss.get("loss_l2_weight", 1.0)),
        quantizer_loss_weight=float(loss.get("loss_q_weight", 1.0)),
    )


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# ---------------------------------------------------------------------------------------------------- weights
def _rename(key: str, num_levels: int) -> str | None:
    """mmquant name of a reference state-dict key, or None when no rule applies."""
    direct = {
        "quantize.embedding.weight": "quantizer.embedding.weight",
        "quantize.proj.weight": "quantizer.affine.weight",
        "quantize.proj.bias": "quantizer.affine.bias",
    }
    if key in direct:
        return direct[key]
    m = re.fullmatch(r"(quant_conv|post_quant_conv)\.(weight|bias)", key)
    if m:
        return key
    m = re.fullmatch(r"(encoder|decoder)\.(.+)\.(weight|bias)", key)
    if not m:
        return None
    side, path, leaf = m.groups()
    if path in ("conv_in", "conv_out"):
        return f"{side}.{path}.{leaf}"
    if path == "norm_out":
        return f"{side}.conv_norm_out.{leaf}"
    m = re.fullmatch(r"mid\.(block_1|block_2|attn_1)\.(\w+)", path)
    if m:
        module, part = m.groups()
        if module == "attn_1":
            return _part(f"{side}.mid_block.attentions.0", part, _ATTENTION_PARTS, leaf)
        return _part(f"{side}.mid_block.resnets.{int(module[-1]) - 1}", part, _RESNET_PARTS, leaf)
    m = re.fullmatch(r"(down|up)\.(\d+)\.(block|attn)\.(\d+)\.(\w+)", path)
    if m:
        direction, level, kind, index, part = m.groups()
        if (direction == "down") != (side == "encoder"):
            return None
        block = _block(side, int(level), num_levels)
        if kind == "attn":
            return _part(f"{block}.attentions.{index}", part, _ATTENTION_PARTS, leaf)
        return _part(f"{block}.resnets.{index}", part, _RESNET_PARTS, leaf)
    m = re.fullmatch(r"(down)\.(\d+)\.downsample\.conv|(up)\.(\d+)\.upsample\.conv", path)
    if m:
        if m.group(1) and side == "encoder":
            return f"{_block(side, int(m.group(2)), num_levels)}.downsamplers.0.conv.{leaf}"
        if m.group(3) and side == "decoder":
            return f"{_block(side, int(m.group(4)), num_levels)}.upsamplers.0.conv.{leaf}"
    return None


def _block(side: str, level: int, num_levels: int) -> str:
    # the reference indexes decoder levels by resolution (up.0 = full size); diffusers in running order
    return f"encoder.down_blocks.{level}" if side == "encoder" else f"decoder.up_blocks.{num_levels - 1 - level}"


def _part(prefix: str, part: str, parts: dict, leaf: str) -> str | None:
    return f"{prefix}.{parts[part]}.{leaf}" if part in parts else None


def convert_reference_state_dict(state_dict: dict[str, Tensor], config: OptVQConfig) -> dict[str, Tensor]:
    """Rename a reference ``VQModel`` state dict (a ``model.`` prefix and ``loss.*`` entries are dropped) into
    :class:`OptVQModel` keys; attention 1x1 convolutions become linear weights. Raises ``ValueError`` naming every
    unconvertible, missing or wrongly shaped key."""
    from .modeling_optvq import OptVQModel

    if state_dict and all(k.startswith("model.") for k in state_dict):  # VQModelHF wraps VQModel as .model
        state_dict = {k[len("model.") :]: v for k, v in state_dict.items()}
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith("loss.")}
    with torch.device("meta"):
        expected = OptVQModel(config).state_dict()
    num_levels = len(config.block_out_channels)
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        new = _rename(key, num_levels)
        if new is None or new not in expected:
            unexpected.append(key)
            continue
        if value.ndim == 4 and expected[new].ndim == 2 and value.shape[2:] == (1, 1):
            value = value[:, :, 0, 0]  # AttnBlock's 1x1 conv == diffusers' Linear
        converted[new] = value
    if unexpected:
        raise ValueError(
            f"checkpoint: {len(unexpected)} key(s) with no counterpart in OptVQModel, e.g. {unexpected[:5]}; check "
            "that the config (--reference_config) is the one the checkpoint was trained with (levels: ch_mult, "
            "num_res_blocks, attn_resolutions; quantizer: use_proj)."
        )
    missing = [k for k in expected if k not in converted and k not in _MMQUANT_ONLY]
    if missing:
        raise ValueError(
            f"checkpoint: {len(missing)} weight(s) of OptVQModel missing from it, e.g. {missing[:5]}; check that the "
            "config (--reference_config) matches the checkpoint (ch_mult, num_res_blocks, attn_resolutions, "
            "use_proj) and that the file holds the full autoencoder."
        )
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in converted.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise ValueError(
            f"checkpoint: {len(wrong)} shape mismatch(es), e.g. {wrong[:3]}; the config's widths (ch, ch_mult, "
            "z_channels, e_dim, n_e, num_head) must be those the checkpoint was trained with (with "
            "--norm_num_groups for models built with other group norms)."
        )
    return converted


# ---------------------------------------------------------------------------------------------------- files
def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(path, map_location="cpu", weights_only=True)  # tensors only, never pickled code
    for key in ("model", "state_dict"):  # the reference's training checkpoints: {"model": state_dict, ...}
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ValueError(f"checkpoint={str(path)!r}: expected a state dict (or one under 'model' / 'state_dict').")
    return loaded


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"reference_config={str(path)!r}: no such file.")
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import yaml

    return yaml.safe_load(path.read_text())


def load_reference_checkpoint(
    checkpoint: str | Path, reference_config: str | Path | None = None
) -> tuple[dict[str, Tensor], dict]:
    """``(state_dict, reference config dict)`` from a weights file (with ``reference_config``), a folder in the Hub
    layout, or a Hub repo id (downloaded with ``huggingface_hub``)."""
    path = Path(checkpoint)
    if not path.exists():
        if str(checkpoint).count("/") != 1 or path.suffix:
            raise ValueError(f"checkpoint={str(checkpoint)!r}: no such file or folder, and not a Hub repo id.")
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(str(checkpoint), allow_patterns=["*.json", "*.safetensors", "*.bin"]))
    if path.is_dir():
        weights = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
        if not weights:
            raise ValueError(
                f"checkpoint={str(checkpoint)!r}: the folder has no model.safetensors or pytorch_model.bin."
            )
        config_path = Path(reference_config) if reference_config else path / "config.json"
        return _read_state_dict(weights[0]), _read_config(config_path)
    if reference_config is None:
        raise ValueError(
            f"checkpoint={str(checkpoint)!r} is a weights file: pass --reference_config with the YAML it was trained "
            "with (e.g. configs/imagenet/optvq_256_f16_h4.yaml of the reference repository)."
        )
    return _read_state_dict(path), _read_config(Path(reference_config))


def model_from_reference(
    checkpoint: str | Path, reference_config: str | Path | None = None, norm_num_groups: int = 32
):
    """An :class:`OptVQModel` (eval mode) holding a reference checkpoint's weights."""
    from .modeling_optvq import OptVQModel

    state_dict, reference = load_reference_checkpoint(checkpoint, reference_config)
    config = config_from_reference(reference, norm_num_groups=norm_num_groups)
    model = OptVQModel(config)
    converted = convert_reference_state_dict(state_dict, config)
    model.load_state_dict(converted, strict=False)
    return model.eval()

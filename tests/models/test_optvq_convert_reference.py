"""Converting reference OptVQ checkpoints (github.com/zbr17/OptVQ): a reduced-width reference model stored in
tests/fixtures/optvq_reference_vqgan (see its README) is converted by the example script, loaded through AutoModel and
must give the reference's codes exactly and its reconstruction to float tolerance."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from transformers import AutoModel

import mmquant
from mmquant.models.optvq.convert_reference import config_from_reference, convert_reference_state_dict

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "optvq_reference_vqgan"
sys.path.insert(0, str(ROOT / "examples" / "optvq"))
import convert_reference_checkpoint as script  # noqa: E402


def _convert(tmp_path, checkpoint, reference_config=None):
    argv = ["--checkpoint", str(checkpoint), "--output_dir", str(tmp_path / "converted"), "--norm_num_groups", "4"]
    if reference_config:
        argv += ["--reference_config", str(reference_config)]
    return script.main(script.parse_args(argv))


def _check_parity(folder):
    model = AutoModel.from_pretrained(folder).eval()
    assert isinstance(model, mmquant.OptVQModel)
    ref = load_file(FIXTURE / "reference_outputs.safetensors")
    x = ref["pixel_values"]
    with torch.no_grad():
        latents = model.encode(x)
        q = model.quantize(latents)
        reconstruction = model.decode(q.quantized)
    torch.testing.assert_close(latents, ref["latents"], rtol=1e-5, atol=1e-5)
    assert torch.equal(
        q.indices.permute(0, 3, 1, 2), ref["indices"]
    )  # mmquant (B, h, w, head); reference (B, head, h, w)
    torch.testing.assert_close(reconstruction, ref["reconstruction"], rtol=1e-4, atol=1e-4)
    # the same codes through the index API and through forward
    torch.testing.assert_close(model.decode_indices(model.encode_to_indices(x)), reconstruction)
    torch.testing.assert_close(model(x).reconstruction, reconstruction)


def test_training_checkpoint_with_yaml_converts_to_reference_outputs(tmp_path):
    folder = _convert(tmp_path, FIXTURE / "reference_state_dict.safetensors", FIXTURE / "reference_config.yaml")
    assert {"config.json", "model.safetensors"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["attention_resolutions"] == [8] and config["block_out_channels"] == [8, 8, 16]
    assert config["quantizer_config"]["sinkhorn_at_inference"] is True
    _check_parity(folder)


def test_torch_checkpoint_under_model_key_with_loss_weights(tmp_path):
    """The reference's own training checkpoints: ``torch.save({"model": state_dict, ...})`` including loss modules."""
    state = load_file(FIXTURE / "reference_state_dict.safetensors")
    state["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 4, 4)
    torch.save({"model": state, "epoch": 3}, tmp_path / "ckpt.pth")
    _check_parity(_convert(tmp_path, tmp_path / "ckpt.pth", FIXTURE / "reference_config.yaml"))


def test_hub_layout_folder_converts(tmp_path):
    """VQModelHF's layout: config.json with the module arguments, weights under ``model.``."""
    params = yaml.safe_load((FIXTURE / "reference_config.yaml").read_text())["model"]["autoencoder"]["params"]
    hub = tmp_path / "hub"
    hub.mkdir()
    config = {name: params[name]["params"] for name in ("encoder", "decoder", "quantize")}
    (hub / "config.json").write_text(json.dumps({**config, "quantize_type": "optvq", "use_connector": True}))
    state = load_file(FIXTURE / "reference_state_dict.safetensors")
    save_file({f"model.{k}": v for k, v in state.items()}, hub / "model.safetensors")
    _check_parity(_convert(tmp_path, hub))


def test_named_sizes_hold_the_released_f16_layout():
    """optvq-vqgan-f16(-h8) have the key set and shapes of a converted released config (ch 128, 16x16 attention)."""
    reference = yaml.safe_load((FIXTURE / "reference_config.yaml").read_text())
    for key, value in dict(
        ch=128, ch_mult=[1, 1, 2, 2, 4], resolution=256, attn_resolutions=[16], z_channels=256
    ).items():
        for side in ("encoder", "decoder"):
            reference["model"]["autoencoder"]["params"][side]["params"][key] = value
    quantize = reference["model"]["autoencoder"]["params"]["quantize"]["params"]
    for name, heads in (("optvq-vqgan-f16", 4), ("optvq-vqgan-f16-h8", 8)):
        quantize.update(n_e=16384, e_dim=256, num_head=heads)
        converted = config_from_reference(reference)
        named = mmquant.get_config(name)
        for key in (
            "image_size",
            "block_out_channels",
            "latent_channels",
            "layers_per_block",
            "attention_resolutions",
        ):
            assert getattr(converted, key) == getattr(named, key), key
        q = {k: v for k, v in converted.quantizer_config.items() if k != "sinkhorn_at_inference"}
        assert q == named.quantizer_config
        assert converted.embed_dim == named.embed_dim and converted.norm_num_groups == named.norm_num_groups


@pytest.fixture
def fixture_parts():
    reference = yaml.safe_load((FIXTURE / "reference_config.yaml").read_text())
    return reference, load_file(FIXTURE / "reference_state_dict.safetensors")


def test_unexpected_key_is_named(fixture_parts):
    reference, state = fixture_parts
    state["encoder.down.0.block.2.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(ValueError, match=r"no counterpart.*encoder\.down\.0\.block\.2\.conv1\.weight.*num_res_blocks"):
        convert_reference_state_dict(state, config_from_reference(reference, norm_num_groups=4))


def test_missing_key_is_named(fixture_parts):
    reference, state = fixture_parts
    del state["decoder.up.2.attn.1.q.weight"]
    with pytest.raises(ValueError, match=r"missing.*decoder\.up_blocks\.0\.attentions\.1\.to_q\.weight"):
        convert_reference_state_dict(state, config_from_reference(reference, norm_num_groups=4))


def test_shape_mismatch_is_named(fixture_parts):
    reference, state = fixture_parts
    reference["model"]["autoencoder"]["params"]["quantize"]["params"]["n_e"] = 128
    with pytest.raises(ValueError, match=r"shape mismatch.*quantizer\.embedding\.weight.*\(64, 4\).*\(128, 4\).*n_e"):
        convert_reference_state_dict(state, config_from_reference(reference, norm_num_groups=4))


def test_bad_inputs_raise_clear_errors(tmp_path, fixture_parts):
    reference, _ = fixture_parts
    with pytest.raises(ValueError, match="pass --reference_config"):
        _convert(tmp_path, FIXTURE / "reference_state_dict.safetensors")
    with pytest.raises(ValueError, match="no such file or folder"):
        _convert(tmp_path, tmp_path / "nothing.pth", FIXTURE / "reference_config.yaml")
    reference["model"]["autoencoder"]["params"]["decoder"]["params"]["ch"] = 16
    with pytest.raises(ValueError, match=r"encoder\.ch=8 differs from decoder\.ch=16"):
        config_from_reference(reference)
    with pytest.raises(ValueError, match="expected the reference's YAML"):
        config_from_reference({"something": 1})

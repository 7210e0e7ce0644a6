"""The API a transformers/timm user expects: ``mmquant.zoo`` after ``import mmquant`` (imported lazily),
``create_model(name)`` random and ``create_model(name, pretrained=True)`` trained, ``get_config`` merging sub-configs,
and commands run out of order failing with a message that names the missing step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmquant

ROOT = Path(__file__).resolve().parents[1]


def test_zoo_is_reachable_after_import_mmquant_and_imported_lazily():
    code = (
        "import sys, mmquant; lazy = 'mmquant.zoo' not in sys.modules; "
        "assert mmquant.zoo.get_checkpoint('optvq-mnist').kind == 'model'; print(lazy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"
    assert mmquant.zoo is sys.modules["mmquant.zoo"]
    with pytest.raises(AttributeError, match="no attribute 'zooo'"):
        mmquant.zooo  # noqa: B018


def test_create_model_is_random_by_default_and_pretrained_loads_the_zoo_weights():
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    trained = mmquant.zoo.load("optvq-mnist").eval()
    pretrained = mmquant.create_model("optvq-mnist", pretrained=True).eval()
    random = mmquant.create_model("optvq-mnist").eval()
    with torch.no_grad():
        assert torch.equal(pretrained(x).reconstruction, trained(x).reconstruction)
        assert not torch.allclose(random(x).reconstruction, trained(x).reconstruction)
    stage1 = mmquant.create_model("mxqvae-caption-mnist", pretrained=True)  # the stage 1 of the shipped pipeline
    assert isinstance(stage1, mmquant.MXQVAEModel)


def test_create_model_pretrained_with_several_checkpoints_of_a_size_loads_the_named_one(monkeypatch):
    """Three shipped MXQ-VAE pipelines (Single, Quad2, Quad4) share the stage-1 size; the registry names Quad4's."""
    from safetensors.torch import load_file

    from mmquant.models import registry

    sizes = [e.name for e in mmquant.zoo.list_checkpoints() if e.size == "mxqvae-caption-mnist"]
    assert len(sizes) > 1 and registry.MODEL_SIZES["mxqvae-caption-mnist"].checkpoint in sizes
    stage1 = mmquant.create_model("mxqvae-caption-mnist", pretrained=True)
    shipped = load_file(Path(mmquant.zoo.resolve("mxqvae-caption-mnist-quad4")) / "stage1" / "model.safetensors")
    assert all(torch.equal(stage1.state_dict()[k], v) for k, v in shipped.items())
    unnamed = registry.MODEL_SIZES["mxqvae-caption-mnist"]._replace(checkpoint=None)
    monkeypatch.setitem(registry.MODEL_SIZES, "mxqvae-caption-mnist", unnamed)
    with pytest.raises(ValueError, match="several zoo checkpoints have this size"):
        mmquant.create_model("mxqvae-caption-mnist", pretrained=True)


def test_create_model_pretrained_without_weights_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no trained weights for this size; sizes with weights: \[.*optvq-mnist"):
        mmquant.create_model("optvq-cifar10", pretrained=True)
    with pytest.raises(ValueError, match="fixed architecture"):
        mmquant.create_model("optvq-mnist", pretrained=True, in_channels=3)


def test_zoo_name_loads_through_the_model_class_offline():
    model = mmquant.OptVQModel.from_pretrained("optvq-mnist")
    assert model.config.quantizer_config["codebook_size"] == 1024


def test_get_config_merges_sub_configs():
    config = mmquant.get_config("optvq-mnist", quantizer_config={"num_heads": 1})
    assert config.quantizer_config["num_heads"] == 1 and config.quantizer_config["codebook_size"] == 1024
    # the README's "swap the quantizer by config alone": Sinkhorn-only keys go, the codebook stays
    vq = mmquant.get_config("optvq-mnist", quantizer_config={"type": "vq"})
    assert vq.quantizer_config["type"] == "vq" and vq.quantizer_config["codebook_size"] == 1024
    assert "epsilon" not in vq.quantizer_config
    model = mmquant.create_model("optvq-mnist", quantizer_config={"type": "vq"})
    assert isinstance(model.quantizer, mmquant.VectorQuantizer)
    nested = mmquant.get_config("laviter-test", vision_config={"image_size": 32})
    assert nested.vision_config.image_size == 32
    assert nested.vision_config.channels == mmquant.get_config("laviter-test").vision_config.channels


def test_readme_usage_snippet_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("## Use\n\n```python\n", 1)[1].split("```", 1)[0]
    assert "* 2 - 1" in snippet  # inputs in [-1, 1]
    namespace: dict = {}
    exec(compile(snippet.replace('"my-tokenizer"', repr(str(tmp_path / "my-tokenizer"))), "README", "exec"),
         namespace)  # fmt: skip
    assert namespace["recon"].shape == (8, 1, 32, 32)


def test_prior_after_unfinished_stage1_names_the_missing_step(tmp_path):
    stage1 = tmp_path / "mxqvae-quad4"
    (stage1 / "checkpoint-500").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mxqvae" / "train_mxqvae_prior.py"), "--config",
         str(ROOT / "examples" / "mxqvae" / "configs" / "prior_quad4.yaml"), "--stage1", str(stage1),
         "--output_dir", str(tmp_path / "prior")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "has not finished (its last checkpoint is checkpoint-500)" in done.stderr
    assert "train_mxqvae.py --config examples/mxqvae/configs/quad4_image_route.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_laviter_phase_before_the_previous_one_names_it(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_laviter", ROOT / "examples" / "laviter" / "train_laviter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # a folder that does not exist: refused while parsing, naming the order of the phases
    with pytest.raises(SystemExit):
        module.parse_args(["--phase", "joint", "--init_from", str(tmp_path / "laviter-quad2-generators")])
    assert "phases run in order" in capsys.readouterr().err
    # a folder without a finished model (an interrupted run): refused when loading, with the same hint
    (tmp_path / "unfinished").mkdir()
    args = module.parse_args(["--phase", "joint", "--init_from", str(tmp_path / "unfinished")])
    with pytest.raises(FileNotFoundError, match="no finished model of the previous phase.*phases run in order"):
        module.load_model_and_data(args)


def test_publish_of_a_missing_folder_names_the_command_that_writes_it(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mmquant.cli", "publish", str(tmp_path / "optvq"), "--repo_id", "you/optvq"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "not a directory. A training run writes it" in done.stderr
    assert "train_optvq.py --config examples/optvq/configs/mnist_optvq.yaml" in done.stderr

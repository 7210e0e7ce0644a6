"""The zoo index is generated from the card data and results files and loads shipped checkpoints offline; a folder
to publish is checked first, with errors naming the bad file; a training output gets a card from its own data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import mmquant
from mmquant import zoo
from mmquant.hub.cards import output_card_data, render_model_card
from mmquant.hub.publish import check_model_folder

ROOT = Path(__file__).resolve().parents[2]


def test_zoo_index_is_up_to_date():
    assert json.loads((ROOT / "src" / "mmquant" / "zoo_index.json").read_text()) == zoo.build_index(ROOT / "hub_cards")


def test_every_model_card_data_file_is_in_the_zoo_with_a_generated_card():
    card_files = [p for p in (ROOT / "hub_cards").glob("*.yaml")]
    entries = zoo.list_checkpoints()
    assert {e.card_data for e in entries} == {p.relative_to(ROOT).as_posix() for p in card_files}
    for entry in entries:
        assert entry.local_path is not None and (entry.local_path / "README.md").is_file()
        assert entry.size in mmquant.list_models()
        assert entry.headline  # read from the results file


def test_load_by_name_offline_matches_the_shipped_folder():
    from transformers import AutoModel

    model = zoo.load("optvq-mnist").eval()
    reference = AutoModel.from_pretrained(ROOT / "checkpoints" / "optvq-mnist").eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.encode_to_indices(x), reference.encode_to_indices(x))
    # the copy inside the package (checkpoints/ at the repository root links to src/mmquant/checkpoints)
    assert Path(zoo.resolve("mmquant/optvq-mnist")) == ROOT / "src" / "mmquant" / "checkpoints" / "optvq-mnist"
    assert Path(zoo.resolve("mmquant/optvq-mnist")).resolve() == (ROOT / "checkpoints" / "optvq-mnist").resolve()
    assert zoo.resolve("someone/else") == "someone/else"  # not in the zoo: passed through to from_pretrained


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="optvq-mnist"):
        zoo.get_checkpoint("optvq-mnsit")


def test_cli_lists_the_zoo():
    out = subprocess.run(
        [sys.executable, "-m", "mmquant.cli", "zoo", "list"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "optvq-mnist" in out and "mmquant/optvq-mnist" in out and "psnr 37" in out


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "run"
    mmquant.create_model("test").save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda f: (f / "config.json").unlink(), FileNotFoundError, "config.json"),
        (lambda f: (f / "config.json").write_text("{"), ValueError, "not valid JSON"),
        (lambda f: (f / "config.json").write_text("{}"), ValueError, "model_type"),
        (lambda f: (f / "model.safetensors").unlink(), FileNotFoundError, "no model.safetensors"),
        (
            lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"),
            FileNotFoundError,
            "pickle weights are not published",
        ),
        (
            lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-100]),
            ValueError,
            "truncated",
        ),
        (lambda f: (f / "model.safetensors").write_bytes(b"PK\x03\x04 not safetensors"), ValueError, "safetensors"),
    ],
)
def test_bad_model_folders_are_refused_before_upload(saved, damage, error, message):
    damage(saved)
    with pytest.raises(error, match=message):
        check_model_folder(saved)


def test_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        check_model_folder(tmp_path / "nothing")


def test_training_output_card(saved):
    (saved / "eval_results.json").write_text(
        json.dumps(
            {
                "dataset": "mnist",
                "command": "python examples/optvq/train_optvq.py --config smoke.yaml",
                "commit": "abc",
                "steps": 2,
                "processes": 1,
                "metrics": [{"metric": "psnr", "split": "test", "value": 12.5, "unit": "dB"}],
            }
        )
    )
    assert check_model_folder(saved) == [saved / "model.safetensors"]
    card = render_model_card(output_card_data(saved, "me/tiny"), sample_image="samples.png")
    assert card.data.library_name == "mmquant" and card.data.datasets == ["mnist"]
    assert [r.metric_value for r in card.data.eval_results] == [12.5]
    assert "| run | psnr | test | 12.5 |" in card.text and "![samples](samples.png)" in card.text
    assert 'AutoModel.from_pretrained("me/tiny")' in card.text and "@article{zhang2024preventing" in card.text
    ModelCard(str(card))  # the YAML parses back
    (saved / "eval_results.json").unlink()
    card = render_model_card(output_card_data(saved, "me/tiny"))
    assert "No evaluation results were recorded" in card.text and not card.data.eval_results

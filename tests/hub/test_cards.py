"""Model cards are rendered from config + results file, and a card that disagrees with its results file fails."""

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

import mmquant
from mmquant.hub.cards import check_card, main, render_model_card

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path):
    (tmp_path / "hub_cards").mkdir()  # the template comes from the package (mmquant/hub/templates)
    data = yaml.safe_load((ROOT / "hub_cards" / "optvq-mnist.yaml").read_text())
    data.update(checkpoint_dir="ckpt", results_file="results.json")
    card = tmp_path / "hub_cards" / "tiny.yaml"
    card.write_text(yaml.safe_dump(data))
    mmquant.create_model("test").save_pretrained(tmp_path / "ckpt")
    results = {
        run: {
            "command": f"python train --{run}",
            "commit": "abc123",
            "steps": 10,
            "processes": 1,
            "metrics": [
                {"metric": "psnr", "split": "test", "value": value},
                {"metric": "code_usage", "split": "test", "value": 1.0},
            ],
        }
        for run, value in (("optvq", 34.567), ("vq", 30.125))
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    return card


def test_render_puts_results_file_numbers_in_metadata_and_body(tmp_path):
    card_path = _project(tmp_path)
    card = render_model_card(card_path)
    assert card.data.library_name == "mmquant"
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values == {"psnr": 34.567, "code_usage": 1.0}
    assert "| vq | psnr | test | 30.125 |" in card.text and "AutoModel.from_pretrained" in card.text
    assert "32 codes of dimension 4, 2 heads" in card.text
    assert main(["render", str(card_path)]) == 0
    loaded = ModelCard.load(tmp_path / "ckpt" / "README.md")
    assert loaded.data.to_dict()["model-index"][0]["results"]
    assert check_card(card_path) == []


def test_check_fails_when_card_and_results_disagree(tmp_path):
    card_path = _project(tmp_path)
    main(["render", str(card_path)])
    readme = tmp_path / "ckpt" / "README.md"
    readme.write_text(readme.read_text().replace("34.567", "35.0"))
    problems = check_card(card_path)
    assert problems and any("34.567" in p for p in problems)
    assert main(["check", str(card_path)]) == 1


def test_results_metrics_limits_the_rows_shown(tmp_path):
    """``results_metrics`` in the card data keeps only those metrics (a seeded table would otherwise list every
    figure of every run); the check still holds."""
    card_path = _project(tmp_path)
    data = yaml.safe_load(card_path.read_text())
    data["results_metrics"] = ["psnr"]
    card_path.write_text(yaml.safe_dump(data))
    card = render_model_card(card_path)
    assert "| vq | psnr | test | 30.125 |" in card.text and "code_usage" not in card.text
    assert {r.metric_type for r in card.data.eval_results} == {"psnr"}
    assert main(["render", str(card_path)]) == 0 and check_card(card_path) == []


def test_results_tables_render_runs_by_metrics_with_std(tmp_path):
    """``results_tables`` (a seeded ablation's per-seed table) shows a row per run, a column per metric, a mean's
    recorded ``<metric>_std`` as ``value ± std``, and names a run the results file lacks."""
    card_path = _project(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    results["mean"] = {
        "command": "python evaluate",
        "metrics": [
            {"metric": "psnr", "split": "test", "value": 32.0},
            {"metric": "psnr_std", "split": "test", "value": 1.5},
        ],
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    data = yaml.safe_load(card_path.read_text())
    data["results_tables"] = [{"title": "Seeds", "runs": ["optvq", "vq", "mean"], "metrics": ["psnr", "code_usage"]}]
    card_path.write_text(yaml.safe_dump(data))
    text = render_model_card(card_path).text
    assert "### Seeds" in text and "| run | psnr | code_usage |" in text
    assert "| optvq | 34.567 | 1.0 |" in text and "| mean | 32.0 ± 1.5 | — |" in text
    assert main(["render", str(card_path)]) == 0 and check_card(card_path) == []
    data["results_tables"][0]["runs"].append("absent")
    card_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="absent"):
        render_model_card(card_path)


def test_publish_local_dir_writes_the_checkpoint_folder_its_card_checks(tmp_path):
    """``mmquant publish RUN --card_data CARD --local_dir DIR`` (how checkpoints/<name>/ are made): the model files,
    the newest sample grid and the card rendered from the results file, which then checks against it."""
    from mmquant.cli import main as cli

    card_path = _project(tmp_path)
    run = tmp_path / "run"
    mmquant.create_model("test").save_pretrained(run)
    (run / "samples").mkdir()
    (run / "samples" / "step-1.png").write_bytes(b"\x89PNG old")
    (run / "samples" / "step-2.png").write_bytes(b"\x89PNG new")
    (run / "samples" / "step-2.png").touch()
    out = tmp_path / "ckpt"  # the card data's checkpoint_dir
    assert cli(["publish", str(run), "--card_data", str(card_path), "--local_dir", str(out)]) == 0
    assert {"config.json", "model.safetensors", "samples.png", "README.md"} <= {p.name for p in out.iterdir()}
    assert (out / "samples.png").read_bytes() == b"\x89PNG new"
    assert check_card(card_path) == [] and "| vq | psnr | test | 30.125 |" in (out / "README.md").read_text()

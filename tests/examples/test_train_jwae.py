"""jWAE example scripts: a smoke run of jWAE-MH (critic and both optimizers checkpointed) resumed mid-run with the
loss log of the uninterrupted run, the VSE++ baseline without a critic, the cross-configuration evaluation and the
retrieval command on the trained folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from mmquant.models.jwae import JWAEModel
from mmquant.models.registry import get_config
from mmquant.training import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "examples" / "jwae"
sys.path.insert(0, str(HERE))
import evaluate_jwae  # noqa: E402
import pretrain_grid_features  # noqa: E402
import probe_jwae  # noqa: E402
import retrieve  # noqa: E402
import train_jwae  # noqa: E402
from two_process_runs import assert_two_processes_match_one  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them
TINY_GRID = '{"grid_feature_channels": [4], "grid_feature_dim": 4, "latent_dim": 8, "text_hidden_size": 16}'


@pytest.fixture(autouse=True)
def _reset_accelerate():
    from accelerate.state import AcceleratorState, PartialState

    yield
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def _records(output_dir):
    return [json.loads(line) for line in (Path(output_dir) / "losses.jsonl").read_text().splitlines()]


def test_jwae_smoke_resume_evaluate_and_retrieve(tmp_path, capsys):
    cache = tmp_path / "data"
    common = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(cache)]
    full = tmp_path / "full"
    result = train_jwae.main(train_jwae.parse_args([*common, "--output_dir", str(full), "--lr_schedule", "constant"]))
    assert [s for s, _ in list_checkpoints(full)] == [2, 4]
    checkpoint = full / "checkpoint-4"
    assert (checkpoint / "critic" / "model.safetensors").exists() and (
        checkpoint / "critic" / "optimizer.json"
    ).exists()
    assert (full / "latents" / "step-4.png").exists() and (full / "losses.png").exists()
    names = {m["metric"] for m in result["metrics"]}
    assert {
        "i2t_recall@1",
        "i2t_recall@10",
        "t2i_recall@5",
        "t2i_median_rank",
        "rsum",
        "image_prior_distance",
    } <= names
    steps = [r for r in _records(full) if "loss" in r]
    assert all("critic_loss" in r and "image_prior_loss" in r for r in steps)

    # stopped after step 2 and resumed: the losses of the uninterrupted run, critic included
    part = tmp_path / "part"
    shutil.copytree(full, part)
    shutil.rmtree(part / "checkpoint-4")
    args = [*common, "--output_dir", str(part), "--lr_schedule", "constant", "--resume_from_checkpoint", "latest"]
    train_jwae.main(train_jwae.parse_args(args))
    resumed = [r for r in _records(part) if "loss" in r]
    for a, b in zip(resumed, steps, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["critic_loss"] == pytest.approx(
            b["critic_loss"], rel=1e-5
        )

    # resuming the finished run trains nothing and records its evaluation (how a results row is made afterwards)
    results_file = tmp_path / "results.json"
    again = [*common, "--output_dir", str(full), "--lr_schedule", "constant", "--resume_from_checkpoint", "latest"]
    train_jwae.main(train_jwae.parse_args([*again, "--results_file", str(results_file)]))
    assert len([r for r in _records(full) if "loss" in r]) == len(steps)
    recorded = {m["metric"]: m["value"] for m in json.loads(results_file.read_text())["full"]["metrics"]}
    assert recorded["rsum"] == pytest.approx(next(m["value"] for m in result["metrics"] if m["metric"] == "rsum"))

    # phase 2: the captioning head alone on the finished run; the embeddings stay the joint run's
    head = tmp_path / "head"
    head_args = [*common, "--phase", "caption_head", "--init_from", str(full), "--output_dir", str(head)]
    train_jwae.main(train_jwae.parse_args(head_args))
    joint, tuned = AutoModel.from_pretrained(full), AutoModel.from_pretrained(head)
    for name, value in joint.state_dict().items():
        assert torch.equal(value, tuned.state_dict()[name]) != name.startswith("text_decoder."), name
    assert all(r["loss"] == pytest.approx(r["image_caption_loss"]) for r in _records(head) if "loss" in r)
    assert not (head / "checkpoint-4" / "critic").exists()

    # the VSE++ baseline (grid features of a briefly pretrained digit CNN): no critic, no decoders, ranking loss only
    grid = tmp_path / "grid"
    info = pretrain_grid_features.main(
        pretrain_grid_features.parse_args(
            ["--output_dir", str(grid), "--channels", "4", "--feature_dim", "4", "--max_steps", "3"]
            + ["--train_examples", "256", "--max_shift", "2"]
        )
    )
    assert 0 <= info["mnist_test_accuracy"] <= 1 and (grid / "grid_features.safetensors").exists()
    assert info["max_shift"] == 2
    vsepp = tmp_path / "vsepp"
    train_jwae.main(
        train_jwae.parse_args(
            [
                *common,
                "--output_dir",
                str(vsepp),
                "--model_size",
                "vsepp-caption-mnist",
                "--model_config",
                TINY_GRID,
                "--grid_features",
                str(grid),
            ]
        )
    )
    trained = AutoModel.from_pretrained(vsepp)
    pretrained = load_file(str(grid / "grid_features.safetensors"))
    assert all(torch.equal(v, trained.grid_features.cnn.state_dict()[k]) for k, v in pretrained.items())
    assert not (vsepp / "checkpoint-4" / "critic").exists()
    assert all(r["loss"] == pytest.approx(r["ranking_loss"]) for r in _records(vsepp) if "loss" in r)
    vsepp_seed1 = tmp_path / "vsepp-seed1"
    vsepp_args = ["--model_size", "vsepp-caption-mnist", "--model_config"]
    vsepp_args += [
        TINY_GRID,
        "--grid_features",
        str(grid),
        "--seed",
        "1",
        "--hard_batch_ratio",
        "1",
    ]  # same-colour batches
    train_jwae.main(train_jwae.parse_args([*common, "--output_dir", str(vsepp_seed1), *vsepp_args]))

    # one table of both models on their training configuration and another one
    results = tmp_path / "results.json"
    gallery = ["--dataset_configs", "quad2", "quad3", "--test_examples", "16", "--dataset_cache_dir", str(cache)]
    models = ["--models", f"jwae={full}", f"vsepp={vsepp}"]
    entries = evaluate_jwae.main(evaluate_jwae.parse_args([*models, *gallery, "--results_file", str(results)]))
    assert set(entries) == {"jwae@quad2", "jwae@quad3", "vsepp@quad2", "vsepp@quad3"}
    stored = json.loads(results.read_text())
    assert {m["metric"] for m in stored["jwae@quad3"]["metrics"]} >= {"rsum", "rsum_drop_from_training_config"}
    assert stored["jwae@quad2"]["trained_on"] == "caption_mnist/quad2"
    ceiling = {m["metric"]: m["value"] for m in stored["jwae@quad2"]["metrics"]}["content_ceiling_recall@1"]
    assert 0 < ceiling <= 100

    # a seeded comparison: one folder per seed, per-seed entries and their mean and standard deviation
    seeded = evaluate_jwae.main(evaluate_jwae.parse_args(["--models", f"vsepp={vsepp},{vsepp_seed1}", *gallery]))
    assert set(seeded) == {f"vsepp/seed{s}@{c}" for s in (0, 1) for c in ("quad2", "quad3")} | {
        "vsepp@quad2",
        "vsepp@quad3",
    }
    per_seed = [{m["metric"]: m["value"] for m in seeded[f"vsepp/seed{s}@quad3"]["metrics"]} for s in (0, 1)]
    summary = {m["metric"]: m["value"] for m in seeded["vsepp@quad3"]["metrics"]}
    assert summary["rsum"] == pytest.approx((per_seed[0]["rsum"] + per_seed[1]["rsum"]) / 2, abs=0.01)
    assert summary["rsum_std"] == pytest.approx(abs(per_seed[0]["rsum"] - per_seed[1]["rsum"]) / 2**0.5, abs=0.01)
    assert seeded["vsepp@quad3"]["seeds"] == [0, 1] and "rsum_drop_from_training_config" in summary
    with pytest.raises(ValueError, match="seeds"):
        evaluate_jwae.main(evaluate_jwae.parse_args(["--models", f"vsepp={vsepp},{vsepp}", "--test_examples", "16"]))

    # the probes: linear read-outs from both modalities, captions decoded from image latents scored by the judge
    probe_args = ["--models", f"jwae={full}", f"vsepp={vsepp}", "--fit_examples", "32", "--test_examples", "16"]
    probe_args += ["--dataset_cache_dir", str(cache), "--output_dir", str(tmp_path / "probe")]
    report = probe_jwae.main(probe_jwae.parse_args(probe_args))
    for name in ("jwae", "vsepp"):
        for key in ("image_readout_digit", "text_readout_color", "t2i_errors_same_content", "t2i_errors_digit_only"):
            assert 0 <= report[name][key] <= 1
        errors = sum(v for k, v in report[name].items() if k.startswith("t2i_errors_"))
        assert errors <= 1
    assert 0 <= report["jwae"]["decoded_object_accuracy"] <= 1 and report["jwae"]["decoded_distinct_captions"] >= 1
    assert "decoded_object_accuracy" not in report["vsepp"]  # no decoder
    assert len((tmp_path / "probe" / "decoded_captions-jwae.txt").read_text().splitlines()) == 16

    # the README's retrieval command on the trained folder
    capsys.readouterr()
    top = retrieve.main(
        retrieve.parse_args(
            ["--model", str(full), "--index", "3", "--gallery_size", "16", "--dataset_cache_dir", str(cache)]
        )
    )
    printed = capsys.readouterr().out
    assert len(top) == 5 and "top 5 of 16 captions" in printed and "decoded from the image latent" in printed
    scores = [s for s, _ in top]
    assert scores == sorted(scores, reverse=True)

    # an image file and a caption file of the user's
    from PIL import Image

    Image.new("RGB", (28, 28), (200, 0, 0)).save(tmp_path / "query.png")  # resized to the model's 64x64
    (tmp_path / "captions.txt").write_text("This is red 3.\n\nThe white 7 is on the upper left.\n")
    top = retrieve.main(
        retrieve.parse_args(
            [
                "--model",
                str(full),
                "--image",
                str(tmp_path / "query.png"),
                "--captions",
                str(tmp_path / "captions.txt"),
            ]
        )
    )
    assert sorted(c for _, c in top) == ["The white 7 is on the upper left.", "This is red 3."]
    with pytest.raises(ValueError, match="--index"):
        retrieve.main(
            retrieve.parse_args(
                ["--model", str(full), "--index", "99", "--gallery_size", "16", "--dataset_cache_dir", str(cache)]
            )
        )


def test_grid_features_folder_is_required_and_must_match(tmp_path):
    common = ["--model_size", "vsepp-caption-mnist", "--output_dir", str(tmp_path / "out")]
    common += ["--dataset_cache_dir", str(tmp_path / "d")]
    common += ["--train_examples", "16", "--test_examples", "8", "--max_steps", "1", "--batch_size", "4"]
    with pytest.raises(ValueError, match="pass --grid_features"):
        train_jwae.main(train_jwae.parse_args(common))
    grid = tmp_path / "grid"
    pretrain_grid_features.main(
        pretrain_grid_features.parse_args(["--output_dir", str(grid), "--channels", "4", "--max_steps", "1"])
    )
    with pytest.raises(ValueError, match="pretrained with"):  # the registry size wants channels [32, 64]
        train_jwae.main(train_jwae.parse_args([*common, "--grid_features", str(grid)]))
    with pytest.raises(FileNotFoundError, match="pretrain_grid_features.py"):
        train_jwae.main(train_jwae.parse_args([*common, "--grid_features", str(tmp_path / "nothing")]))


def test_caption_head_phase_needs_a_finished_run_with_a_head(tmp_path):
    with pytest.raises(SystemExit):
        train_jwae.parse_args(["--phase", "caption_head"])
    with pytest.raises(SystemExit):
        train_jwae.parse_args(["--init_from", str(tmp_path)])
    with pytest.raises(SystemExit):  # no such folder
        train_jwae.parse_args(["--phase", "caption_head", "--init_from", str(tmp_path / "none")])
    (tmp_path / "unfinished").mkdir()
    args = train_jwae.parse_args(["--phase", "caption_head", "--init_from", str(tmp_path / "unfinished")])
    with pytest.raises(FileNotFoundError, match="phases run in order"):
        train_jwae.main(args)
    no_head = JWAEModel(get_config("jwae-test"))
    no_head.save_pretrained(tmp_path / "no-head")
    args = train_jwae.parse_args(["--phase", "caption_head", "--init_from", str(tmp_path / "no-head")])
    with pytest.raises(ValueError, match="no captioning head"):
        train_jwae.main(args)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(SystemExit):
        train_jwae.parse_args(["--batch_size", "1"])
    with pytest.raises(SystemExit):
        train_jwae.parse_args(["--model_size", "optvq-mnist"])
    with pytest.raises(SystemExit):
        train_jwae.parse_args(["--hard_batch_ratio", "1.5"])
    with pytest.raises(ValueError, match="model name"):
        train_jwae.parse_args(["--model_size", "no-such-size"])
    with pytest.raises(SystemExit):
        evaluate_jwae.parse_args(["--models", "no-equals-sign"])
    with pytest.raises(SystemExit):
        pretrain_grid_features.parse_args(["--max_shift", "8"])  # half a 16-pixel crop: the digit would wrap around
    assert pretrain_grid_features.parse_args(["--max_shift", "0"]).max_shift == 0


def test_five_caption_folders_with_pixels_and_with_precomputed_features(tmp_path):
    """The paper's protocol on the COCO / Flickr30k builders' fixtures: five captions per image, pixels or features."""
    from safetensors.torch import save_file

    fixtures = ROOT / "tests" / "fixtures" / "caption_folders"
    common = [
        "--max_steps",
        "2",
        "--batch_size",
        "8",
        "--eval_steps",
        "2",
        "--checkpointing_steps",
        "2",
        "--dataset_cache_dir",
        str(tmp_path / "cache"),
        "--model_size",
        "jwae-test",
        "--sum_hinge_warmup_steps",
        "1",
    ]
    flickr = train_jwae.main(
        train_jwae.parse_args(
            [
                *common,
                "--dataset",
                "flickr30k_captions",
                "--data_dir",
                str(fixtures / "flickr30k"),
                "--model_config",
                '{"max_text_length": 48}',
                "--output_dir",
                str(tmp_path / "flickr"),
            ]
        )
    )
    assert flickr["dataset"] == "flickr30k_captions" and flickr["test_images"] == 2
    # image->text with 5 relevant captions among 10: recall@10 covers the whole gallery
    assert {m["metric"]: m["value"] for m in flickr["metrics"]}["i2t_recall@10"] == 100.0

    features = tmp_path / "features.safetensors"
    save_file({"train": torch.randn(4, 32), "test": torch.randn(2, 32)}, features)
    config = (
        '{"image_input": "features", "image_feature_dim": 32, "image_decoder_hidden_size": 16, "max_text_length": 48}'
    )
    coco = train_jwae.main(
        train_jwae.parse_args(
            [
                *common,
                "--dataset",
                "coco_captions",
                "--dataset_config",
                "karpathy",
                "--data_dir",
                str(fixtures / "coco"),
                "--image_features",
                str(features),
                "--model_config",
                config,
                "--output_dir",
                str(tmp_path / "coco"),
            ]
        )
    )
    assert coco["test_images"] == 2
    with pytest.raises(ValueError, match="no tensor named 'test'"):
        save_file({"train": torch.randn(4, 32)}, features)
        train_jwae.main(
            train_jwae.parse_args(
                [
                    *common,
                    "--dataset",
                    "coco_captions",
                    "--dataset_config",
                    "karpathy",
                    "--data_dir",
                    str(fixtures / "coco"),
                    "--image_features",
                    str(features),
                    "--model_config",
                    config,
                    "--output_dir",
                    str(tmp_path / "coco2"),
                ]
            )
        )


def test_two_processes_with_accelerate_launch_match_one_process(tmp_path):
    """The ranking loss over the global batch's negatives (gathered), the caption losses over its tokens. Word
    dropout and the critic (its prior samples are each process's own draws) off."""
    config = {"image_size": 64, "image_channels": [4, 8, 8], "max_text_length": 48, "lambda_image_caption": 0.1}
    config |= {"word_dropout": 0.0, "lambda_image_prior": 0.0, "lambda_text_prior": 0.0}
    args = ["--config", HERE / "configs" / "smoke.yaml", "--dataset_cache_dir", tmp_path / "data"]
    args += ["--model_config", json.dumps(config), "--max_steps", "3", "--sum_hinge_warmup_steps", "1"]
    args += ["--eval_steps", "3", "--checkpointing_steps", "3"]
    assert_two_processes_match_one(HERE / "train_jwae.py", args, tmp_path, steps=3)

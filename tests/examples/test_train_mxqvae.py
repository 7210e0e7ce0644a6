"""MXQ-VAE example scripts: stage-1 smoke run and exact resume, prior smoke run writing a loadable pipeline."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from mmquant.training import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "examples" / "mxqvae"
sys.path.insert(0, str(HERE))
import train_mxqvae  # noqa: E402
import train_mxqvae_prior  # noqa: E402
from two_process_runs import assert_two_processes_match_one  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them


@pytest.fixture(autouse=True)
def _reset_accelerate():
    from accelerate.state import AcceleratorState, PartialState

    yield
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def _losses(output_dir):
    return [
        r["loss"] for r in map(json.loads, (Path(output_dir) / "losses.jsonl").read_text().splitlines()) if "loss" in r
    ]


def test_stage1_smoke_resume_and_prior(tmp_path):
    cache = tmp_path / "data"
    common = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(cache)]
    full = tmp_path / "full"
    train_mxqvae.main(train_mxqvae.parse_args([*common, "--output_dir", str(full), "--lr_schedule", "constant"]))
    assert [s for s, _ in list_checkpoints(full)] == [2, 4]
    assert (full / "tokenizer.json").exists() and (full / "samples" / "step-4.png").exists()
    result = json.loads((full / "eval_results.json").read_text())
    assert {m["metric"] for m in result["metrics"]} == {
        "psnr",
        "text_token_accuracy",
        "caption_exact_match",
        "code_usage",
        "text_only_prefix_match",
        "image_only_prefix_match",
    }

    # a run stopped after step 2 and resumed from its checkpoint logs the losses of the uninterrupted one
    part = tmp_path / "part"
    shutil.copytree(full, part)
    shutil.rmtree(part / "checkpoint-4")
    args = [*common, "--output_dir", str(part), "--lr_schedule", "constant", "--resume_from_checkpoint", "latest"]
    train_mxqvae.main(train_mxqvae.parse_args(args))
    assert _losses(part) == pytest.approx(_losses(full), rel=1e-5)

    # a second phase continues the finished model (weights, tokenizer, config) with the one-modality rows; at
    # a learning rate of 1e-12 only the codebook (dead-code restarts) may move
    phase2 = tmp_path / "phase2"
    args = [*common, "--init_from", str(full), "--output_dir", str(phase2), "--max_steps", "2",
            "--learning_rate", "1e-12", "--text_only_ratio", "0.25", "--image_only_ratio", "0.25",
            "--prefix_consistency_weight", "1"]  # fmt: skip
    train_mxqvae.main(train_mxqvae.parse_args(args))
    from mmquant.models.mxqvae import MXQVAEModel

    before, after = MXQVAEModel.from_pretrained(full), MXQVAEModel.from_pretrained(phase2)
    assert (after.config.text_only_ratio, after.config.image_only_ratio) == (0.25, 0.25)
    assert after.config.hidden_size == before.config.hidden_size == 16
    for (name, a), (_, b) in zip(after.state_dict().items(), before.state_dict().items()):
        assert name.startswith("quantizer.") or torch.allclose(a, b, atol=1e-6), name
    assert (phase2 / "tokenizer.json").read_text() == (full / "tokenizer.json").read_text()
    logged = [json.loads(line) for line in (phase2 / "losses.jsonl").read_text().splitlines()]
    assert all(r["prefix_consistency_loss"] > 0 for r in logged if "loss" in r)
    with pytest.raises(SystemExit, match="init_from"):
        train_mxqvae.main(train_mxqvae.parse_args([*common, "--init_from", str(tmp_path), "--output_dir", str(part)]))

    prior_out = tmp_path / "prior"
    train_mxqvae_prior.main(
        train_mxqvae_prior.parse_args(
            [
                "--config",
                str(HERE / "configs" / "prior_smoke.yaml"),
                "--stage1",
                str(full),
                "--output_dir",
                str(prior_out),
                "--dataset_cache_dir",
                str(cache),
                "--eval_steps",
                "4",
            ]  # fmt: skip
        )
    )
    from mmquant.pipelines import MXQVAEPipeline

    pipe = MXQVAEPipeline.from_pretrained(prior_out / "pipeline")
    out = pipe(num_samples=2, seed=0)
    assert len(out.captions) == 2 and out.codes.shape == (2, 72) and int(out.codes.max()) < 32
    assert torch.equal(pipe(num_samples=2, seed=0).codes, out.codes)

    # --init_prior continues the finished prior (a warm restart, fresh optimizer): at a learning rate of 1e-12 its
    # weights stay those of the prior it starts from, whatever --n_embd says
    warm_out = tmp_path / "prior-warm"
    args = ["--config", str(HERE / "configs" / "prior_smoke.yaml"), "--stage1", str(full), "--output_dir",
            str(warm_out), "--dataset_cache_dir", str(cache), "--init_prior", str(prior_out / "prior"),
            "--learning_rate", "1e-12", "--n_embd", "64", "--max_steps", "2"]  # fmt: skip
    train_mxqvae_prior.main(train_mxqvae_prior.parse_args(args))
    start, warm = (AutoModelForCausalLM.from_pretrained(d) for d in (prior_out / "prior", warm_out / "prior"))
    assert warm.config.n_embd == start.config.n_embd
    for (name, a), (_, b) in zip(warm.state_dict().items(), start.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name

    # a caption-conditioned prior on that pipeline (text -> image): saved as the pipeline's caption_prior
    caption_out = tmp_path / "caption-prior"
    args = ["--config", str(HERE / "configs" / "prior_smoke.yaml"), "--caption_conditioned", "--base_pipeline",
            str(prior_out / "pipeline"), "--output_dir", str(caption_out), "--dataset_cache_dir", str(cache),
            "--eval_steps", "4"]  # fmt: skip
    train_mxqvae_prior.main(train_mxqvae_prior.parse_args(args))
    result = json.loads((caption_out / "eval_results.json").read_text())
    assert result["model"] == "mxqvae_caption_prior" and result["metrics"][0]["value"] > 0
    both = MXQVAEPipeline.from_pretrained(caption_out / "pipeline")
    assert both.caption_prior.config.caption_vocab_size == both.stage1.config.vocab_size
    assert torch.equal(both(num_samples=2, seed=0).codes, out.codes)  # unconditional: the base prior, unchanged
    caption = "the red 1 is on the left"
    drawn = both(num_samples=3, seed=0, caption=caption)
    assert drawn.codes.shape == (3, 72)
    assert torch.equal(both(num_samples=3, seed=0, caption=caption).codes, drawn.codes)
    with pytest.raises(SystemExit):
        train_mxqvae_prior.parse_args(["--base_pipeline", str(prior_out / "pipeline")])  # needs --caption_conditioned
    with pytest.raises(SystemExit, match="init_prior.*caption-conditioned"):
        args = ["--config", str(HERE / "configs" / "prior_smoke.yaml"), "--stage1", str(full), "--output_dir",
                str(tmp_path / "wrong-kind"), "--dataset_cache_dir", str(cache), "--init_prior",
                str(caption_out / "prior")]  # fmt: skip
        train_mxqvae_prior.main(train_mxqvae_prior.parse_args(args))

    # on a stage 1 alone (an ablation's text -> image): a pipeline with the caption prior and no joint prior
    alone_out = tmp_path / "caption-prior-alone"
    args = ["--config", str(HERE / "configs" / "prior_smoke.yaml"), "--caption_conditioned", "--stage1", str(full),
            "--output_dir", str(alone_out), "--dataset_cache_dir", str(cache), "--eval_steps", "4"]  # fmt: skip
    train_mxqvae_prior.main(train_mxqvae_prior.parse_args(args))
    alone = MXQVAEPipeline.from_pretrained(alone_out / "pipeline")
    assert alone.prior is None and alone.caption_prior is not None
    assert alone(num_samples=2, seed=0, caption=caption).codes.shape == (2, 72)
    with pytest.raises(ValueError, match="no joint prior"):
        alone(num_samples=2, seed=0)
    with pytest.raises(ValueError, match="no joint prior"):
        alone(image=out.images[0])


def test_two_processes_with_accelerate_launch_match_one_process(tmp_path):
    """Stage 1 in two processes: the caption loss is a mean over tokens whose count differs between the two halves of
    the batch, so it is re-weighted to the global batch's mean. IM and TC are off: their masks are drawn from each
    process's own random stream (as diffusers draws noise), the same distribution but not the same draws."""
    args = ["--config", HERE / "configs" / "smoke.yaml", "--dataset_cache_dir", tmp_path / "data", "--max_steps", "3"]
    args += ["--image_mask_ratio", "0", "--text_mask_ratio", "0", "--eval_steps", "3", "--checkpointing_steps", "3"]
    keys = ["loss", "image_loss", "text_loss", "quantizer_loss", "text_accuracy"]
    assert_two_processes_match_one(HERE / "train_mxqvae.py", args, tmp_path, steps=3, keys=keys)


def test_prior_two_processes_with_accelerate_launch_match_one_process(tmp_path):
    """The prior on a one-step stage-1 model; dropout and the text-first draws (each process's own) off."""
    cache, stage1 = tmp_path / "data", tmp_path / "stage1"
    smoke = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(cache)]
    train_mxqvae.main(train_mxqvae.parse_args([*smoke, "--output_dir", str(stage1), "--max_steps", "1"]))
    args = ["--config", HERE / "configs" / "prior_smoke.yaml", "--stage1", stage1, "--dataset_cache_dir", cache]
    args += ["--max_steps", "3", "--dropout", "0", "--text_first_ratio", "0", "--eval_steps", "3"]
    args += ["--checkpointing_steps", "3", "--top_k", "2"]
    assert_two_processes_match_one(HERE / "train_mxqvae_prior.py", args, tmp_path, steps=3)

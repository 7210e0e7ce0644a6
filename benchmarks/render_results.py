"""Render the benchmark results files into ``benchmarks/RESULTS.md`` and two PNG plots (never typed by hand).

    python benchmarks/render_results.py

Reads ``benchmarks/results/bench_tokenizer_quality.json`` (PSNR, SSIM, usage, step time per quantizer),
``bench_tokenizer_quality_seeds.json`` (the leading rows over several seeds, when present) and
``benchmarks/results/bench_quantizer_grid.json`` (time and memory ratios per size and precision); opens the page with
where mmquant's OptVQ leads and trails (computed from those rows: the several-seed file when present); writes
``benchmarks/RESULTS.md``, ``benchmarks/results/psnr_vs_usage.png`` and ``benchmarks/results/time_ratio_vs_n.png``.
Every ``bench_tokenizer_quality_k<K>*.json`` (one codebook size and budget per file, from ``--codebook_size``) gets a
table of its own with the standing against each peer and, when recorded (``--usage_every``), code usage over
training; every ``bench_residual_quality*.json`` a table with each stage's code usage;
``bench_sinkhorn_tokens_per_code.json`` a table of its own. The large-codebook and residual files also give one
standing row each (the best Sinkhorn row against the strongest other row, seed by seed), at the top of the page and
in the README between its ``<!-- standing ... -->`` and ``<!-- /standing -->`` markers.
"""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _psnr(r: dict) -> str:
    return f"{r['psnr']:.2f} ± {r['psnr_std']:.2f}" if "psnr_std" in r else f"{r['psnr']:.2f}"


def _per_seed(r: dict) -> str:
    return ", ".join(f"{x:.2f}" for x in r.get("psnr_per_seed", [r["psnr"]]))


def _where(q: dict) -> str:
    """The machine a results file was measured on: its threads, and the GPU and worker processes when it used them."""
    m, jobs = q["machine"], q["settings"].get("jobs", 1)
    where = f"{m['threads']} thread(s)" + (f" on one {m['device']}" if m.get("device") else "")
    return where + (f", {jobs} runs at a time (step times measured under that sharing)" if jobs > 1 else "")


def _quality_section(q: dict, title: str) -> list[str]:
    s = q["settings"]
    seeds = s.get("seeds", [s.get("seed")])
    lines = [
        f"## {title} (`bench_tokenizer_quality.py`)",
        "",
        f"{s['model']}, {s['steps']} steps at batch {s['batch_size']}, learning rate {s['learning_rate']} "
        f"({s['lr_schedule']}), seed(s) {', '.join(map(str, seeds))}"
        + (" (figures are means over seeds, PSNR ± its standard deviation)" if len(seeds) > 1 else "")
        + f"; test set: {s['test_images']} MNIST digits. Command: "
        f"`{q['command']}` at commit `{q['commit']}`, torch {q['torch']}, vector-quantize-pytorch "
        f"{q['vector_quantize_pytorch']}, {_where(q)}.",
        "",
        "| quantizer | PSNR (dB) | PSNR per seed | SSIM | code usage | perplexity | codes | s/step | step time / "
        "fastest VQ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(q["rows"], key=lambda r: -r["psnr"]):
        lines.append(
            f"| {r['quantizer']} | {_psnr(r)} | {_per_seed(r)} | {r['ssim']:.3f} | {r['code_usage']:.1%} "
            f"| {r['perplexity']:.0f} | {r['codebook_size']} | {r['seconds_per_step']:.4f} "
            f"| {r['step_time_ratio_to_fastest_vq']:.2f} |"
        )
    lines.append("")
    lines += _added_rows(q)
    return lines


def _added_rows(q: dict) -> list[str]:
    lines = []
    added = [r for r in q["rows"] if "command" in r]
    if added:
        lines += ["Rows added later to the same settings (`--append`), with the load average at their end:", ""]
        lines += [
            f"- `{r['quantizer']}`: `{r['command']}` at commit `{r['commit']}`, load {r['load_average']}"
            for r in added
        ]
        lines.append("")
    return lines


def _known(benchmark: str) -> list[str]:
    """Every quantizer a benchmark script measures when ``--only`` is not given."""
    from peer_quantizers import PEERS, RESIDUAL_PEERS

    if benchmark == "residual_quality":
        from bench_residual_quality import OURS

        return [*OURS, *RESIDUAL_PEERS]
    from bench_tokenizer_quality import OURS

    return [*OURS, *PEERS]


def _not_measured(q: dict) -> str:
    """``", 13 of 14 quantizers (not measured: ...)"`` when the file's runs (its command and those of rows added with
    ``--append``) set out to measure quantizers that have no row (a run stopped at its deadline, or one that failed);
    computed from the commands' ``--only`` lists (every known quantizer without one), not from ``stopped_after``,
    which an ``--append`` run does not update."""
    planned = []
    for command in [q["command"], *(r["command"] for r in q["rows"] if "command" in r)]:
        words = command.split()
        if "--only" in words:
            names = list(itertools.takewhile(lambda w: not w.startswith("--"), words[words.index("--only") + 1 :]))
        else:
            names = _known(q.get("benchmark", ""))
        planned += [n for n in names if n not in planned]
    measured = {r["quantizer"] for r in q["rows"]}
    missing = [n for n in planned if n not in measured]
    if not missing:
        return ""
    return f", {len(measured)} of {len(measured) + len(missing)} quantizers (not measured: {', '.join(missing)})"


def _usage_curves(q: dict) -> list[str]:
    """Code usage over training (``--usage_every``): per row, the eval-mode usage of the probe images at each
    checkpoint, averaged over the seeds, with the training batch's usage after it."""
    rows = [r for r in q["rows"] if r.get("usage_curve_per_seed")]
    if not rows:
        return []
    lines = [
        f"Code usage over training: eval-mode usage of the first {q['settings'].get('usage_probe_images', 1000)} "
        "test digits / usage of that step's training batch (training-mode assignment), means over the seeds.",
        "",
    ]
    groups: dict[tuple, list[dict]] = {}  # rows appended with another --usage_every get a table of their own
    for r in rows:
        groups.setdefault(tuple(p["step"] for p in r["usage_curve_per_seed"][0]), []).append(r)
    for steps, group in groups.items():
        lines += ["| quantizer | " + " | ".join(f"step {s}" for s in steps) + " |", "|---" * (1 + len(steps)) + "|"]
        for r in group:
            curves = r["usage_curve_per_seed"]
            cells = []
            for i in range(len(steps)):
                probe = sum(c[i]["probe_code_usage"] for c in curves) / len(curves)
                batch = sum(c[i]["batch_usage"] for c in curves) / len(curves)
                cells.append(f"{probe:.1%} / {batch:.1%}")
            lines.append(f"| {r['quantizer']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _tokens_per_code_section(t: dict) -> list[str]:
    """The Sinkhorn assignment against the nearest code as the codebook outgrows the batch (no training)."""
    lines = [
        "## Sinkhorn assignment when codes outnumber tokens (`bench_sinkhorn_tokens_per_code.py`)",
        "",
        f"Tokens and codes drawn from N(0, I), D = {t['settings']['dim']}, means over seeds "
        f"{', '.join(map(str, t['settings']['seeds']))}. Command: `{t['command']}` at commit `{t['commit']}`. "
        "Error ratio: mean squared distance to the Sinkhorn-assigned code over that to the nearest code.",
        "",
        "| tokens N | codes K | K / N | tokens not at their nearest code | error ratio | codes used (Sinkhorn) "
        "| codes used (nearest) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in t["rows"]:
        lines.append(
            f"| {r['tokens']} | {r['codebook_size']} | {r['codes_per_token']:g} | {r['moved_share']:.1%} "
            f"| {r['error_ratio']:.2f} | {r['codes_used_sinkhorn']:.0f} | {r['codes_used_nearest']:.0f} |"
        )
    return [*lines, ""]


def _sinkhorn_settings(s: dict) -> list[str]:
    """The Sinkhorn options a results file's settings changed from their defaults, e.g. ``["ε 3.0"]``."""
    return [f"{k} {s[o]}" for k, o in (("ε", "optvq_epsilon"), ("iterations", "optvq_n_iters")) if s.get(o)]


def _codebook_sections(files: list[tuple[str, dict]]) -> list[str]:
    """One section per large-codebook results file: the rows, the standing against each peer, usage over training."""
    lines = []
    for name, q in files:
        s = q["settings"]
        sinkhorn = _sinkhorn_settings(s)
        sinkhorn = f", OptVQ Sinkhorn {' and '.join(sinkhorn)}" if sinkhorn else ""
        title = f"Tokenizer quality at K = {s['codebook_size']}, {s['steps']} steps{sinkhorn}{_not_measured(q)}"
        title += f" (`{name}`)"
        lines += _quality_section(q, title)
        lines += standing(q)
        lines += _usage_curves(q)
    return lines


def _residual_sections(files: list[tuple[str, dict]]) -> list[str]:
    lines = []
    for name, q in files:
        s = q["settings"]
        seeds = s["seeds"]
        lines += [
            f"## Residual quantization, {s['num_stages']} stages of {s['codebook_size']} codes"
            + f"{_not_measured(q)} (`bench_residual_quality.py`, `{name}`)",
            "",
            f"{s['model']}, {s['steps']} steps at batch {s['batch_size']}, learning rate {s['learning_rate']} "
            f"({s['lr_schedule']}), seed(s) {', '.join(map(str, seeds))}; test set: {s['test_images']} MNIST digits. "
            f"Command: `{q['command']}` at commit `{q['commit']}`, torch {q['torch']}, vector-quantize-pytorch "
            f"{q['vector_quantize_pytorch']}, {_where(q)}. Code usage and perplexity are per stage, on the whole "
            "test set.",
            "",
            "| quantizer | PSNR (dB) | PSNR per seed | SSIM | mean stage usage | usage per stage | perplexity per "
            "stage | s/step | step time / fastest |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(q["rows"], key=lambda r: -r["psnr"]):
            usage = ", ".join(f"{u:.0%}" for u in r["stage_usage"])
            perplexity = ", ".join(f"{x:.0f}" for x in r["stage_perplexity"])
            lines.append(
                f"| {r['quantizer']} | {_psnr(r)} | {_per_seed(r)} | {r['ssim']:.3f} | {r['code_usage']:.1%} "
                f"| {usage} | {perplexity} | {r['seconds_per_step']:.4f} | {r['step_time_ratio_to_fastest_vq']:.2f} |"
            )
        lines += ["", *_added_rows(q), *_usage_curves(q)]
    return lines


FULL_USAGE = 0.999  # "100% usage" as the issue means it: every code used on the test set, to rounding


def _paired(a: dict, b: dict) -> tuple[list[float], str]:
    """Per-seed PSNR differences a - b and the verdict they give (leads/trails only when every seed agrees)."""
    deltas = [x - y for x, y in zip(a.get("psnr_per_seed", [a["psnr"]]), b.get("psnr_per_seed", [b["psnr"]]))]
    if len(deltas) == 1:
        return deltas, "leads (one seed)" if deltas[0] > 0 else "trails (one seed)"
    return deltas, "leads" if min(deltas) > 0 else ("trails" if max(deltas) < 0 else "mixed: depends on the seed")


def standing(q: dict, timing: dict | None = None) -> list[str]:
    """Where mmquant's best OptVQ row stands against each peer at full code usage, computed from the rows; step
    times come from ``timing`` (a results file measured on an idle machine) where it has the quantizer. With several
    seeds the comparison is paired: the same seed gives both quantizers the same initialisation and batches, so the
    per-seed PSNR differences are what the verdict reads (leads or trails only when every seed agrees)."""
    own = {r["quantizer"]: r["seconds_per_step"] for r in q["rows"]}
    idle = {r["quantizer"]: r["seconds_per_step"] for r in (timing or {}).get("rows", [])}

    run = {r["quantizer"]: r.get("command", q["command"]) for r in q["rows"]}  # appended rows: their own run

    def time_ratio(a: str, b: str) -> tuple[float | None, str]:
        """a's step time over b's, both from one run: the idle all-quantizer run when it has both, else this file's
        when they come from the same run; None when they were timed in different runs."""
        if a in idle and b in idle:
            return idle[a] / idle[b], "idle machine"
        if run[a] == run[b]:
            return own[a] / own[b], "same run"
        return None, "timed in different runs"

    rows = [r for r in q["rows"] if r["code_usage"] >= FULL_USAGE]
    ours = [r for r in rows if r["quantizer"].startswith("mmquant_optvq")]
    peers = [r for r in rows if not r["quantizer"].startswith("mmquant")]
    if not ours or not peers:
        return []
    best = max(ours, key=lambda r: r["psnr"])
    lines = [
        f"Best mmquant OptVQ row at full usage: `{best['quantizer']}`, {_psnr(best)} dB. Against each peer at full "
        "usage (ΔPSNR > 0: mmquant leads; step time ratio ≤ 1.15: within the issue's bound; both step times always "
        "from one run):",
        "",
        "| peer | peer PSNR (dB) | ΔPSNR (dB) | ΔPSNR per seed | mmquant step time / peer's | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(peers, key=lambda r: -r["psnr"]):
        ratio, source = time_ratio(best["quantizer"], r["quantizer"])
        deltas, verdict = _paired(best, r)
        delta = sum(deltas) / len(deltas)
        if ratio is not None:
            verdict += ", faster or within 1.15x" if ratio <= 1.15 else f", {ratio:.2f}x slower"
        per_seed = ", ".join(f"{d:+.2f}" for d in deltas)
        lines.append(
            f"| {r['quantizer']} | {_psnr(r)} | {delta:+.2f} | {per_seed} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} ({source}) | {verdict} |"
        )
    return [*lines, ""]


def headline(q: dict, setting: str) -> str | None:
    """One table row: the best Sinkhorn row of a results file against the strongest other row. For single
    quantizers both sides at full usage (the issue's criterion); for residual stacks every row (usage shown)."""
    residual = q.get("benchmark") == "residual_quality"
    ours_prefix = "mmquant_rq_sinkhorn" if residual else "mmquant_optvq"
    rows = q["rows"] if residual else [r for r in q["rows"] if r["code_usage"] >= FULL_USAGE]
    ours = [r for r in rows if r["quantizer"].startswith(ours_prefix)]
    others = [r for r in rows if not r["quantizer"].startswith(ours_prefix)]
    if not ours or not others:
        return None
    best, rival = max(ours, key=lambda r: r["psnr"]), max(others, key=lambda r: r["psnr"])
    deltas, verdict = _paired(best, rival)
    per_seed = ", ".join(f"{d:+.2f}" for d in deltas)
    return (
        f"| {setting} | `{best['quantizer']}` | {_psnr(best)} ({best['code_usage']:.1%}) | `{rival['quantizer']}` "
        f"| {_psnr(rival)} ({rival['code_usage']:.1%}) | {per_seed} | {verdict} |"
    )


def headlines(per_k: list[tuple[str, dict]], residual: list[tuple[str, dict]]) -> list[str]:
    """The large-codebook and residual standings in one table (RESULTS.md and the README's "where mmquant stands")."""
    rows = []
    for _, q in per_k:
        s = q["settings"]
        extra = "".join(f", {x}" for x in _sinkhorn_settings(s))
        rows.append(headline(q, f"K = {s['codebook_size']}, {s['steps']} steps{extra}"))
    for _, q in residual:
        s = q["settings"]
        rows.append(headline(q, f"residual, {s['num_stages']} stages of {s['codebook_size']}, {s['steps']} steps"))
    rows = [r for r in rows if r]
    if not rows:
        return []
    return [
        "Large codebooks and residual stacks (each row: the best Sinkhorn row against the strongest other row of one "
        "results file, 3 seeds paired by seed; single quantizers compared at full test-set usage, residual stacks "
        "at any usage; PSNR in dB, mean ± std, test-set code usage in brackets):",
        "",
        "| setting | best Sinkhorn row | PSNR (usage) | strongest other row | PSNR (usage) | ΔPSNR per seed "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


README_BEGIN = "<!-- standing: rendered by benchmarks/render_results.py -->"
README_END = "<!-- /standing -->"


def render_readme(block: list[str], readme: Path) -> bool:
    """Replace the README's block between ``README_BEGIN`` and ``README_END`` with ``block``; False when the
    README has no such block (nothing is written)."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + README_BEGIN + "\n" + "\n".join(block) + README_END + tail)
    return True


def _cell_ratio(row: dict, ours: str, theirs: str) -> float:
    """``ours`` time over ``theirs`` in one grid cell: the median over its interleaved rounds of the ratio within
    each round (a slow spell of the machine then slows both sides of a ratio), or the ratio of the medians for a
    file without round-by-round times."""
    a, b = row["methods"][ours], row["methods"][theirs]
    if "rounds_ms" in a and "rounds_ms" in b:
        return statistics.median(x / y for x, y in zip(a["rounds_ms"], b["rounds_ms"]))
    return a["ms"] / b["ms"]


def grid_standing(g: dict) -> list[str]:
    """mmquant's OptVQ forward (and forward+backward) time over each comparison, as a range over the grid's cells
    (each cell's ratio paired round by round, :func:`_cell_ratio`)."""
    pairs = [
        ("mmquant_optvq_fwd", "reference_sinkhorn_fwd", "the reference OptVQ `sinkhorn()`"),
        (
            "mmquant_sinkhorn_assign_fwd",
            "reference_sinkhorn_fwd",
            "the reference OptVQ `sinkhorn()`, assignment to assignment (mmquant's `sinkhorn_assign`)",
        ),
        ("mmquant_optvq_fwd", "vqp_vq_fwd", "vector-quantize-pytorch `VectorQuantize` forward"),
        ("mmquant_optvq_fwd_bwd", "vqp_vq_fwd_bwd", "vector-quantize-pytorch `VectorQuantize` forward+backward"),
        ("mmquant_optvq_fwd", "mmquant_vq_fwd", "mmquant's nearest-neighbour VQ forward"),
    ]
    paired = all("rounds_ms" in m for r in g["rows"] for m in r["methods"].values())
    lines = []
    for ours, theirs, what in pairs:
        ratios = sorted(
            _cell_ratio(r, ours, theirs) for r in g["rows"] if ours in r["methods"] and theirs in r["methods"]
        )
        if ratios:
            lines.append(
                f"- mmquant OptVQ time / {what}: {ratios[0]:.2f}x to {ratios[-1]:.2f}x "
                f"(median {ratios[len(ratios) // 2]:.2f}x over {len(ratios)} cells"
                + ("; each cell the median of its rounds' ratios)." if paired else ").")
            )
    return [*lines, ""] if lines else []


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


def _allocator_section(a: dict) -> list[str]:
    """The reference ``sinkhorn()`` against ours with glibc's default allocator and with freed memory retained."""
    reference = a["reference"] + (f" at `{a['reference_commit']}`" if a.get("reference_commit") else "")
    retain = ", ".join(f"`{k}={v}`" for k, v in a["retain_env"].items())
    lines = [
        "## The reference's time and the C allocator (`bench_reference_allocator.py`)",
        "",
        f"Command: `{a['command']}` at commit `{a['commit']}`, torch {a['torch']}, {a['machine']['threads']} threads, "
        f"load average at start/end {a['load_average_start_end']}. `reference`: {reference}; `ours`: mmquant's "
        "`sinkhorn_assign` (the same work); `ours warm`: the same call again at once (its buffer in cache; every "
        "other call follows a different method); `module`: the training-mode `SinkhornQuantizer` forward; `cdist`: "
        f"the distances alone (`torch.cdist`), which both start from. Each mode is one child process; `retain` sets "
        f"{retain} (freed blocks stay in the heap). Times are medians of interleaved rounds; ratios paired within "
        "rounds.",
        "",
        "| mode | N | K | D | dtype | reference ms | reference faults/call | ours ms | ours warm ms | module ms "
        "| cdist ms | reference/ours | reference/ours warm | reference/module |",
        "|---" * 14 + "|",
    ]
    for mode, rows in a["modes"].items():
        for r in rows:
            ms = {name: f"{m['ms']:.2f}" for name, m in r["methods"].items()}
            faults = r["methods"]["reference"]["minor_faults_per_call"]
            ratios = [f"{r[f'reference_over_{name}']:.2f}x" for name in ("ours", "ours_warm", "module")]
            cells = [mode, r["N"], r["K"], r["D"], r["dtype"], ms["reference"], f"{faults:.0f}", ms["ours"]]
            cells += [ms["ours_warm"], ms["module"], ms["cdist"], *ratios]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return [*lines, ""]


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


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _load_all(pattern: str, key) -> list[tuple[str, dict]]:
    files = [(path.name, json.loads(path.read_text())) for path in RESULTS.glob(pattern)]
    return sorted(files, key=lambda f: (*key(f[1]["settings"]), f[0]))


def main() -> Path:
    names = ("bench_tokenizer_quality", "bench_tokenizer_quality_seeds", "bench_quantizer_grid")
    q, qs, g = (_load(f"{n}.json") for n in names)
    per_k = _load_all("bench_tokenizer_quality_k*.json", lambda s: (s["codebook_size"], s["steps"]))
    residual = _load_all("bench_residual_quality*.json", lambda s: (s["num_stages"], s["codebook_size"], s["steps"]))
    lines = [
        "# Benchmark results",
        "",
        "Rendered by `python benchmarks/render_results.py` from `benchmarks/results/`.",
        "",
    ]
    if q is not None or qs is not None:
        source = "the several-seed rows (PSNR) and the all-quantizer run (step time)" if qs and q else "the rows below"
        lines += ["## Where mmquant stands", "", f"Computed from {source}.", "", *standing(qs or q, q)]
    top = headlines(per_k, residual)
    lines += top
    if g is not None:
        lines += grid_standing(g)
    if q is not None:
        lines += _quality_section(q, "Tokenizer quality, every quantizer")
        lines += ["![PSNR against code usage](results/psnr_vs_usage.png)", ""]
    if qs is not None:
        lines += _quality_section(qs, "Tokenizer quality, the leading rows over several seeds")
    lines += _codebook_sections(per_k)
    tokens_per_code = _load("bench_sinkhorn_tokens_per_code.json")
    if tokens_per_code is not None:
        lines += _tokens_per_code_section(tokens_per_code["sinkhorn_tokens_per_code"])
    lines += _residual_sections(residual)
    if g is not None:
        lines += _grid_section(g)
    allocator = _load("bench_reference_allocator.json")
    if allocator is not None:
        lines += _allocator_section(allocator)
    _plots(q, g)
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    if top and render_readme(top, HERE.parent / "README.md"):
        print(f"wrote the standing table into {HERE.parent / 'README.md'}")
    return out


if __name__ == "__main__":
    main()

"""MXQ-VAE's Caption MNIST tables, written to a results file with the command and commit that produced them.

    # Table 1: Degree accuracy of stage-1 models (name=folder pairs) on the QuadK Degree test set
    python examples/mxqvae/evaluate_mxqvae.py degree --dataset_config quad4_degree \\
        --models mxqvae=outputs/mxqvae-quad4 no_text_corruption=outputs/mxqvae-quad4-no-tc ...
    # Table 2: semantic consistency of pairs sampled from a pipeline, judged by the shipped judge, and its
    # text -> image / image -> text accuracy on the layout's test pairs
    python examples/mxqvae/evaluate_mxqvae.py consistency --pipeline outputs/mxqvae-prior-quad4/pipeline \\
        --num_samples 500 --name quad4 --layout quad4
    # the same with the paper's sampling (the prior's codes decoded as they are)
    python examples/mxqvae/evaluate_mxqvae.py consistency --pipeline outputs/mxqvae-prior-quad4/pipeline \\
        --num_samples 500 --name quad4-paper --layout quad4 --paper_sampling
    # Table 2's average over layouts: the mean and sample std of recorded rows (read from --results_file)
    python examples/mxqvae/evaluate_mxqvae.py layouts --rows table2/single table2/quad1 ... --name all-layouts \\
        --results_file examples/mxqvae/results/caption_mnist.json

Degree accuracy is reported twice: ``degree_accuracy`` compares the digit and colour tokens of the reconstruction
with the input caption's position by position (the text decoder predicts one token per input position), and
``degree_accuracy_parsed`` asks the whole reconstruction to parse first (a caption with any wrong template word
scores 0 there). Both merge their figures into ``<output_dir>/eval_results.json`` (default ``outputs/mxqvae-eval``)
under ``table1/<name>`` and ``table2/<name>``, and into ``--results_file`` only when it is given (the card's tables:
``--results_file examples/mxqvae/results/caption_mnist.json``).

Conditional generation (``consistency``, on ``--conditional_inputs`` test pairs of ``--layout``): text -> image
samples an image for each test caption (from the pipeline's caption-conditioned prior where it has one, else by
completing the caption's codes encoded alone; ``sampling.text_to_image`` in the row says which), and
``text_to_image_pair_accuracy`` is the share
of images in which the judge reads exactly the caption's objects; image -> text completes each test image's codes
into a caption, and ``image_to_text_pair_accuracy`` is the share of captions that parse and describe exactly the
objects the judge reads in the image (``*_object_accuracy``: per named object).
``--text_to_image_only`` (and a pipeline without a joint prior, as ``train_mxqvae_prior.py --caption_conditioned
--stage1`` saves) scores text -> image alone.

Sampling uses the pipeline's defaults (a low temperature for the caption's codes, a stage-1 refinement of the
caption, caption drafts, its ``caption_grammar`` and its ``default_temperature``, none in the paper; see
``mmquant.pipelines.pipeline_mxqvae``) unless ``--paper_sampling`` is given. ``--seeds 0 2000 3000`` scores each
sampling seed on its own (rows ``table2/<name>/seed<S>``) and ``table2/<name>`` is their mean ± std; unconditional
rows also carry ``object_diversity``, how evenly the judge's readings of the sampled digits spread over the (digit,
colour) classes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant.arguments import make_parser
from mmquant.data.builders import build_dataset
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.pairs import CaptionPairs
from mmquant.metrics.consistency import (
    degree_accuracy,
    degree_token_accuracy,
    load_judge,
    object_diversity,
    semantic_consistency,
)
from mmquant.training import command_line, git_commit, merge_result, repo_relative, seed_summary
from mmquant.user_errors import check_input_paths

HERE = Path(__file__).resolve().parent


@torch.no_grad()
def reconstruct(model, pairs: CaptionPairs, batch_size: int = 250) -> torch.Tensor:
    """Each (image, caption) through the joint codes (clean inputs, eval mode) back to caption token ids (N, L)."""
    model.eval()
    ids = []
    for start in range(0, len(pairs), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pairs)))
        out = model(pairs.pixel_values(index), pairs.input_ids[index], return_loss=False)
        ids.append(out.text_logits.argmax(-1))
    return torch.cat(ids)


def degree_slot_ids(tokenizer) -> list[int]:
    """Token ids of the words a Degree caption alters: the digits and the colour words."""
    return tokenizer.convert_tokens_to_ids([str(d) for d in range(10)] + list(DEFAULT_COLORS))


def masked_slot_accuracy(model, pairs: CaptionPairs, tokenizer) -> float:
    """How much of a caption's content the model reads from the image: the unaltered pairs (the highest degree) with
    every digit and colour word replaced by [MASK], reconstructed; the fraction of those words it gets right (a
    model that never looks at the image scores chance, about 0.18 on Caption MNIST's 10 digits and 4 colours)."""
    top = max(pairs.extra["degree"])
    index = torch.tensor([i for i, d in enumerate(pairs.extra["degree"]) if d == top])
    ids = pairs.input_ids[index]
    slots = torch.isin(ids, torch.tensor(degree_slot_ids(tokenizer)))
    captions = [pairs.captions[i] for i in index.tolist()]
    masked = CaptionPairs(pairs.images[index], ids.masked_fill(slots, model.config.mask_token_id), captions, {})
    recon = reconstruct(model, masked)
    return float((recon == ids)[slots].float().mean())


def degree_test_split(config_name: str, num_examples: int, cache_dir: str | None):
    """The test split of a Caption MNIST Degree config (`num_examples` base pairs, each with its K+1 degrees)."""
    return build_dataset("caption_mnist", config_name, cache_dir=cache_dir, num_examples={"test": num_examples})[
        "test"
    ]


def run_degree(args, provenance: dict) -> None:
    ds = degree_test_split(args.dataset_config, args.num_examples, args.dataset_cache_dir)
    for spec in args.models:
        name, _, folder = spec.partition("=")
        model = AutoModel.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        pairs = CaptionPairs.from_dataset(ds, tokenizer, model.config.max_text_length, extra_columns=["degree"])
        started = time.time()
        recon = reconstruct(model, pairs)
        texts = tokenizer.batch_decode(recon, skip_special_tokens=True)
        by_token = degree_token_accuracy(recon, pairs.input_ids, pairs.extra["degree"], degree_slot_ids(tokenizer))
        parsed = degree_accuracy(texts, pairs.captions, pairs.extra["degree"])
        image_route = masked_slot_accuracy(model, pairs, tokenizer)
        metrics = (
            [
                {"metric": "masked_slot_accuracy", "split": "test", "value": round(image_route, 4)},
            ]
            + [
                {"metric": "degree_accuracy", "degree": d, "split": "test", "value": round(v, 4)}
                for d, v in by_token.items()
            ]
            + [
                {"metric": "degree_accuracy_parsed", "degree": d, "split": "test", "value": round(v, 4)}
                for d, v in parsed.items()
            ]
        )
        entry = provenance | {
            "model": repo_relative(folder),
            "dataset": f"caption_mnist/{args.dataset_config}",
            "base_pairs": args.num_examples,
            "seconds": round(time.time() - started, 1),
            "metrics": metrics,
        }
        _record(args, f"table1/{name}", entry)
        print(name, "by token", {d: round(v, 3) for d, v in by_token.items()}, "parsed", parsed,
              "masked slots", round(image_route, 3))  # fmt: skip


def run_consistency(args, provenance: dict) -> None:
    from mmquant.pipelines import MXQVAEPipeline, MXQVAEPipelineOutput

    pipe = MXQVAEPipeline.from_pretrained(args.pipeline)
    if args.no_caption_grammar:
        pipe.register_to_config(caption_grammar=None)
    judge = load_judge(args.judge)
    started = time.time()
    # text -> image alone: asked for, or a pipeline without a joint prior (a text -> image pipeline)
    joint = pipe.prior is not None and not args.text_to_image_only
    per_seed, images, captions = {}, None, None
    for seed in args.seeds or [args.seed]:  # a row per sampling seed (with --seeds), then their mean
        seeded = argparse.Namespace(**{**vars(args), "seed": seed})
        scores = {}
        if joint:
            drawn, written = sample_pairs(pipe, seeded)
            scores = semantic_consistency(drawn, written, judge)
            # how evenly the drawn digits spread over (digit, colour): a low temperature can trade it for consistency
            single = (args.layout or args.name) == "single"
            scores["object_diversity"] = object_diversity(drawn, judge, single=single)
            images, captions = (images, captions) if images is not None else (drawn, written)
        if args.conditional_inputs:
            scores |= conditional_accuracy(pipe, judge, seeded, image_to_text=joint)
        per_seed[seed] = scores
    scores = seed_summary(per_seed.values()) if args.seeds else per_seed[args.seed]
    per_seed = per_seed if args.seeds else {}
    grid = None
    if joint:
        grid_dir = Path(args.results_file).parent if args.results_file else Path(args.output_dir)
        grid = grid_dir / f"samples_{args.name}.png"
        grid.parent.mkdir(parents=True, exist_ok=True)
        MXQVAEPipeline.save_grid(MXQVAEPipelineOutput(images=images[:16], captions=captions[:16], codes=None), grid)
    entry = provenance | {
        "pipeline": repo_relative(args.pipeline),
        "num_samples": args.num_samples if joint else 0,
        "sampling": {"top_k": args.top_k, "temperature": _temperature(args, pipe), "seed": args.seed}
        | {k: v for k, v in _sampling(args, pipe).items() if k in ("text_temperature", "refine", "caption_drafts")}
        | {"caption_grammar": pipe.config.caption_grammar}
        | (
            {
                "conditional_inputs": args.conditional_inputs,
                "layout": args.layout or args.name,
                "guidance_scale": args.guidance_scale,
                "text_to_image": "caption_prior" if pipe.caption_prior is not None else "caption_codes_prefix",
            }
            if args.conditional_inputs
            else {}
        ),
        "seconds": round(time.time() - started, 1),
        "samples_grid": repo_relative(grid) if grid else None,
        "metrics": [{"metric": k, "split": "generated", "value": round(v, 4)} for k, v in scores.items()],
    }
    if per_seed:
        for seed, values in per_seed.items():
            metrics = [{"metric": k, "split": "generated", "value": round(v, 4)} for k, v in values.items()]
            row = entry | {"sampling": entry["sampling"] | {"seed": seed}, "metrics": metrics}
            _record(args, f"table2/{args.name}/seed{seed}", row)
            print(f"{args.name} seed {seed}", values)
        entry["seeds"] = list(per_seed)
    _record(args, f"table2/{args.name}", entry)
    print(args.name, scores)


def sample_pairs(pipe, args) -> tuple[list, list[str]]:
    """``--num_samples`` unconditional pairs, ``--batch_size`` a call (call k seeded ``--seed + k * batch_size``)."""
    images, captions = [], []
    for start in range(0, args.num_samples, args.batch_size):
        n = min(args.batch_size, args.num_samples - start)
        out = pipe(num_samples=n, seed=args.seed + start, **_sampling(args, pipe))
        images += out.images
        captions += out.captions
    return images, captions


@torch.no_grad()
def conditional_accuracy(pipe, judge, args, image_to_text: bool = True) -> dict[str, float]:
    """Text -> image and image -> text on the first ``--conditional_inputs`` test pairs of ``--layout``, one sample
    each (seed ``--seed + i``), judged against the input (see the module docstring)."""
    from mmquant.data.pairs import load_caption_mnist_pairs

    c = pipe.stage1.config
    sizes = {"test": args.conditional_inputs}
    _, splits = load_caption_mnist_pairs(
        args.layout or args.name, sizes, c.max_text_length, args.dataset_cache_dir, pipe.tokenizer
    )
    pairs = splits["test"].resized(c.image_size)
    sampling = dict(num_samples=1, guidance_scale=args.guidance_scale, **_sampling(args, pipe))
    drawn, described = [], []
    for i, caption in enumerate(pairs.captions):
        drawn += pipe(caption=caption, seed=args.seed + i, **sampling).images
        if image_to_text:  # (needs the joint prior)
            described += pipe(image=pairs.image_array(i), seed=args.seed + i, **sampling).captions
    t2i = semantic_consistency(drawn, pairs.captions, judge)
    scores = {
        "text_to_image_pair_accuracy": t2i["consistency"],
        "text_to_image_object_accuracy": t2i["object_accuracy"],
    }
    if described:
        i2t = semantic_consistency(pairs.pixel_values(torch.arange(len(pairs))), described, judge)
        scores |= {
            "image_to_text_pair_accuracy": i2t["consistency"],
            "image_to_text_object_accuracy": i2t["object_accuracy"],
            "image_to_text_parse_rate": i2t["parse_rate"],
        }
    return scores


def _sampling(args, pipe) -> dict:
    """The pipeline's sampling arguments: top-k and temperature, and with ``--paper_sampling`` the paper's procedure
    (no low text temperature, no stage-1 refinement, one caption per image); otherwise the pipeline's defaults for
    those three; ``--caption_drafts`` over either."""
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(type(pipe).__call__).parameters.items()}
    steps = [k for k in pipe.PAPER_SAMPLING if k != "temperature"]
    extra = pipe.PAPER_SAMPLING if args.paper_sampling else {k: defaults[k] for k in steps}
    if args.caption_drafts is not None:
        extra = extra | {"caption_drafts": args.caption_drafts}
    return extra | {"top_k": args.top_k, "temperature": _temperature(args, pipe)}


def _temperature(args, pipe) -> float:
    """``--temperature``; else 1 with ``--paper_sampling``, or the pipeline's ``default_temperature`` (saved in its
    ``model_index.json``)."""
    if args.temperature is not None:
        return args.temperature
    return pipe.PAPER_SAMPLING["temperature"] if args.paper_sampling else pipe.config.default_temperature


_LAYOUT_METRICS = ("consistency", "object_accuracy", "parse_rate", "object_diversity")


def run_layouts(args, provenance: dict) -> None:
    """``table2/<name>``: the mean and sample std over the ``--rows`` of the results file (one Table 2 row per
    layout) of the unconditional metrics, as the paper's Table 2 average; the rows are named in the entry."""
    import json

    results = json.loads(Path(args.results_file).read_text()) if Path(args.results_file).is_file() else {}
    missing = [row for row in args.rows if row not in results]
    if missing:
        raise SystemExit(f"--rows {missing}: not in --results_file {args.results_file}; run `consistency` first.")
    per_row = [
        {m["metric"]: m["value"] for m in results[row]["metrics"] if m["metric"] in _LAYOUT_METRICS}
        for row in args.rows
    ]
    scores = seed_summary(per_row)
    entry = {**provenance, "rows": args.rows, "metrics": [
        {"metric": k, "split": "generated", "value": v} for k, v in scores.items()
    ]}  # fmt: skip
    _record(args, f"table2/{args.name}", entry)
    print(f"table2/{args.name} over {len(args.rows)} rows: {scores}")


def _record(args, key: str, entry: dict) -> None:
    """Merge ``entry`` into ``<output_dir>/eval_results.json`` and, when named, into ``--results_file``."""
    merge_result(Path(args.output_dir) / "eval_results.json", key, entry)
    if args.results_file:
        merge_result(args.results_file, key, entry)


def main(argv=None) -> None:
    p = make_parser(__doc__)
    p.add_argument(
        "table",
        choices=["degree", "consistency", "layouts"],
        help="degree: Table 1 (stage-1 models); consistency: Table 2 (a pipeline's samples); layouts: the mean over "
        "Table 2 rows already in --results_file (Table 2's average)",
    )
    p.add_argument(
        "--output_dir", default="outputs/mxqvae-eval", help="eval_results.json (and the samples grid) go here"
    )
    p.add_argument(
        "--results_file",
        default=None,
        help="also merge the figures into this results file (the card's: "
        "examples/mxqvae/results/caption_mnist.json); none by default",
    )
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--dataset_config", default="quad4_degree", help="Caption MNIST Degree config (degree)")
    p.add_argument("--num_examples", type=int, default=1000, help="Degree base pairs (each gives K+1 rows)")
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=FOLDER", help="stage-1 models (degree)")
    p.add_argument("--pipeline", default=None, help="pipeline folder (consistency)")
    p.add_argument("--judge", default=None, help="judge checkpoint (default: the shipped one)")
    p.add_argument("--name", default="quad4", help="key of this pipeline's row (consistency)")
    p.add_argument("--num_samples", type=int, default=500, help="pairs sampled (consistency)")
    p.add_argument("--batch_size", type=int, default=100, help="pairs sampled per call (consistency)")
    p.add_argument("--top_k", type=int, default=10, help="top-k sampling (consistency)")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (consistency; default: the pipeline's, 1 with --paper_sampling)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (consistency)")
    p.add_argument(
        "--paper_sampling",
        action="store_true",
        help="sample as the paper does: the prior's codes decoded as they are, without the pipeline's low text "
        "temperature, stage-1 refinement and caption drafts (consistency)",
    )
    p.add_argument(
        "--caption_drafts",
        type=int,
        default=None,
        help="captions drawn per image, the one the prior agrees on best kept (consistency; default: the pipeline's)",
    )
    p.add_argument(
        "--conditional_inputs",
        type=int,
        default=100,
        help="test pairs for text->image and image->text (consistency; 0 skips them)",
    )
    p.add_argument(
        "--text_to_image_only",
        action="store_true",
        help="score text->image alone: no unconditional pairs, no image->text (consistency; the only scores of a "
        "pipeline without a joint prior)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="sampling seeds (consistency): each samples its own pairs and text->image / image->text on the same "
        "test inputs (rows table2/<name>/seed<S>), and table2/<name> is their mean and sample std",
    )
    p.add_argument(
        "--no_caption_grammar",
        action="store_true",
        help="draft captions without the pipeline's caption_grammar (consistency; an ablation of it)",
    )
    p.add_argument(
        "--layout", default=None, help="Caption MNIST layout of those test pairs (consistency; default: --name)"
    )
    p.add_argument(
        "--rows",
        nargs="+",
        default=None,
        help="layouts: the Table 2 rows of --results_file to average (one per layout), written as table2/<name>",
    )
    p.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="classifier-free-style guidance of text->image / image->text (not in the paper; default: none)",
    )
    args = p.parse_args(argv)
    check_input_paths(p, args, models="dir", pipeline="model", judge="model")
    command = command_line()
    provenance = {"command": command, "commit": git_commit(HERE)}
    if args.table == "layouts":
        if not args.rows or not args.results_file:
            p.error("layouts: give --rows (Table 2 rows) and the --results_file that holds them")
        run_layouts(args, provenance)
    elif args.table == "degree":
        if not args.models:
            p.error("degree: give --models NAME=FOLDER ...")
        run_degree(args, provenance)
    else:
        if not args.pipeline:
            p.error("consistency: give --pipeline FOLDER")
        if args.text_to_image_only and not args.conditional_inputs:
            p.error("--text_to_image_only scores --conditional_inputs test captions: give it a positive number")
        run_consistency(args, provenance)


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(main, prog="evaluate_mxqvae.py"))

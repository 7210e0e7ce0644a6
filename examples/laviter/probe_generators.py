"""Probes of LAViTeR's generators on Caption MNIST (what stops them learning the digits): phase 2 (``--phase
generators``) trained from one phase-1 model under named variants, the generated images scored by the Caption MNIST
judge, which the training never sees, and the generated captions against the true ones.

    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase1_vta_grid.yaml
    python examples/laviter/probe_generators.py --init_from outputs/laviter-quad2-vta-grid \\
        --variants no-clip positions positions-g10 --max_steps 1500 --output_dir outputs/laviter-probes

Every variant trains one of the two alone (the image generator with ``use_itm`` off, the captioner with ``use_tim``
off: they share nothing in phase 2), except the ``redescribe`` ones (the generator learns from the captioner too, and
both train), for the same ``--max_steps`` and batch, and writes ``<output_dir>/<variant>/`` (a ``train_laviter.py`` run
of ``configs/phase2_generators.yaml`` whose ``model_config`` is the variant's alone). The table ``probes.json`` /
``probes.md`` under ``--output_dir`` gives, on the first ``--eval_images`` Quad2 test pairs:
for the generator the judge's object accuracy (the caption's objects seen at their quadrant with their digit and
colour), pair accuracy (all of them, nothing else), judge-scored R-precision and the model's own DAMSM-scored
R-precision; for the captioner its teacher-forcing next-word accuracy and the object and pair accuracy of its greedy
captions. Above it, how much the phase-1 sentence and global image features (what the generator is conditioned on, and
what the encoders were trained to match) carry each quadrant's digit and colour: linear read-outs
(``mmquant.metrics.readout``). ``--results_file`` merges each variant as ``probe/<variant>``.

``--regression_steps N`` probes the conditioning alone instead: each variant's generator is trained by the pixel term
only (no discriminator, no DAMSM) for N steps, and ``regression.json`` / ``regression.md`` give where its images put
each caption's objects and colours (``mmquant.metrics.layout``):

    python examples/laviter/probe_generators.py --init_from outputs/laviter-quad2-vta-grid \\
        --variants first-attention word-rnn --regression_steps 1200 --eval_images 300 --output_dir outputs/reg"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.data.caption_mnist import DEFAULT_COLORS

HERE = Path(__file__).resolve().parent

_ONLY_GENERATOR = {"use_itm": False, "lambda_itm": 0.0, "lambda_fake_text": 0.0}  # phase 3 would need these at 0
_ONLY_CAPTIONER = {"use_itm": True, "use_tim": False, "lambda_tim": 0.0, "lambda_fake_image": 0.0}
_NO_CLIP = ["--max_grad_norm", "0", "--adam_beta1", "0.5"]  # AttnGAN's optimiser
_PLACED = {"generator_attention_positions": True}
_PLACED_G10 = {**_PLACED, "gamma3": 10.0}  # the generated-image matching at AttnGAN's sharpness
_FIRST_ATTENTION = {**_PLACED_G10, "generator_first_stage_attention": True}
_WITH_CAPTIONER = {"use_itm": True, "lambda_itm": 0.1, "lambda_fake_text": 1.0}  # both modules, as phase 2 trains them
_REDESCRIBE = {**_FIRST_ATTENTION, **_WITH_CAPTIONER, "lambda_redescription": 10.0}
_WORD_RNN_READ = {**_REDESCRIBE, "generator_word_rnn": True}
_WORD_RNN = {**_FIRST_ATTENTION, "generator_word_rnn": True}
# AC-GAN's per-quadrant classifier: the digit + 1 and the colour + 1 (0: an empty quadrant)
_PLACE_LABELS = {"place_label_classes": [11, len(DEFAULT_COLORS) + 1]}
_PLACE_D_CONTEXT = {
    **_PLACED_G10,
    "generator_first_stage_attention": True,
    "discriminator_place_words": True,
    "generator_word_context": True,
}
# name -> (what it tests, --model_config, other train_laviter arguments)
VARIANTS: dict[str, tuple[str, dict, list[str]]] = {
    "paper": (
        "the first phase-2 settings (3 stages of 16 channels, gradient clipping 1.0, Adam beta1 0.9)",
        {},
        ["--max_grad_norm", "1.0", "--adam_beta1", "0.9"],
    ),
    "no-clip": (
        "AttnGAN's optimiser: no gradient clipping, Adam beta1 0.5",
        {},
        _NO_CLIP,
    ),
    "wide": (
        "no-clip with 32-channel generator and discriminators",
        {"generator_channels": 32, "discriminator_channels": 32},
        _NO_CLIP,
    ),
    "no-damsm": (
        "no-clip without the generated-image DAMSM term (eq. 11's λ = 0): the conditional discriminator alone",
        {"lambda_fake_image_damsm": 0.0},
        _NO_CLIP,
    ),
    "one-stage": (
        "no-clip with one 32x32 stage (no cascade, no word attention)",
        {"num_generator_stages": 1},
        _NO_CLIP,
    ),
    "two-stages": (
        "no-clip with two stages (16, 32)",
        {"num_generator_stages": 2},
        _NO_CLIP,
    ),
    "positions": (
        "no-clip with place-aware word attention (generator_attention_positions)",
        _PLACED,
        _NO_CLIP,
    ),
    "positions-damsm20": (
        "positions with the generated-image DAMSM term at λ = 20 (eq. 11; AttnGAN uses 5 to 50)",
        {**_PLACED, "lambda_fake_image_damsm": 20.0},
        _NO_CLIP,
    ),
    "positions-g10": (
        "positions with the generated-image matching at γ3 = 10 (when phase 1 sharpened it: the term's scale)",
        _PLACED_G10,
        _NO_CLIP,
    ),
    "positions-no-damsm": (
        "positions without the generated-image DAMSM term (λ = 0): the conditional discriminator alone",
        {**_PLACED, "lambda_fake_image_damsm": 0.0},
        _NO_CLIP,
    ),
    "positions-g10-damsm20": (
        "positions-g10 with the generated-image DAMSM term at λ = 20",
        {**_PLACED_G10, "lambda_fake_image_damsm": 20.0},
        _NO_CLIP,
    ),
    "positions-g10-wide": (
        "positions-g10 with 32-channel generator and discriminators",
        {**_PLACED_G10, "generator_channels": 32, "discriminator_channels": 32},
        _NO_CLIP,
    ),
    "first-attention": (
        "positions-g10 with the first stage's 4x4 layout attending to the words too",
        _FIRST_ATTENTION,
        _NO_CLIP,
    ),
    "place-d": (
        "first-attention against discriminators that read the words place by place (discriminator_place_words)",
        {**_FIRST_ATTENTION, "discriminator_place_words": True},
        _NO_CLIP,
    ),
    "place-d-context": (
        "place-d with the generator's own self-attention over the words (generator_word_context)",
        _PLACE_D_CONTEXT,
        _NO_CLIP,
    ),
    "swapped-halves": (
        "place-d-context with real images whose halves are swapped as mismatched pairs (discriminator_swapped_halves)",
        {**_PLACE_D_CONTEXT, "discriminator_swapped_halves": True},
        _NO_CLIP,
    ),
    "positions-wide": (
        "positions with 32-channel generator and discriminators",
        {**_PLACED, "generator_channels": 32, "discriminator_channels": 32},
        _NO_CLIP,
    ),
    "redescribe": (
        "first-attention with the captioner trained beside it and reading its images (lambda_redescription = 2)",
        {**_FIRST_ATTENTION, **_WITH_CAPTIONER, "lambda_redescription": 2.0},
        _NO_CLIP,
    ),
    "redescribe-10": (
        "redescribe with lambda_redescription = 10",
        _REDESCRIBE,
        _NO_CLIP,
    ),
    "redescribe-context": (
        "redescribe-10 with the generator's own self-attention over the words (generator_word_context)",
        {**_REDESCRIBE, "generator_word_context": True},
        _NO_CLIP,
    ),
    "redescribe-context-30": (
        "redescribe-context with lambda_redescription = 30",
        {**_REDESCRIBE, "lambda_redescription": 30.0, "generator_word_context": True},
        _NO_CLIP,
    ),
    "word-rnn": (
        "first-attention with the generator's own GRU over the words feeding the first stage (generator_word_rnn)",
        _WORD_RNN,
        _NO_CLIP,
    ),
    "word-rnn-read": (
        "word-rnn with the captioner trained beside it and reading its images (lambda_redescription = 10)",
        _WORD_RNN_READ,
        _NO_CLIP,
    ),
    "image-match": (
        "first-attention with the generated images matched to their pairs' real images (lambda_image_match = 5)",
        {**_FIRST_ATTENTION, "lambda_image_match": 5.0},
        _NO_CLIP,
    ),
    "image-match-all": (
        "word-rnn-read with the image-match term too (lambda_image_match = 5)",
        {**_WORD_RNN_READ, "lambda_image_match": 5.0},
        _NO_CLIP,
    ),
    "image-match-exchanged": (
        "word-rnn-read with the image-match term whose negatives include the real image with two quadrants exchanged",
        {**_WORD_RNN_READ, "lambda_image_match": 5.0, "image_match_exchanged_quadrants": True},
        _NO_CLIP,
    ),
    "image-match-exchanged-only": (
        "first-attention with the image-match term whose negatives include the real image, two quadrants exchanged",
        {**_FIRST_ATTENTION, "lambda_image_match": 5.0, "image_match_exchanged_quadrants": True},
        _NO_CLIP,
    ),
    "binding-d": (
        "word-rnn-read against discriminators that read the words with a GRU and see exchanged-quadrant real images "
        "as mismatched (discriminator_word_rnn, discriminator_exchanged_quadrants)",
        {**_WORD_RNN_READ, "discriminator_word_rnn": True, "discriminator_exchanged_quadrants": True},
        _NO_CLIP,
    ),
    "pixel": (
        "first-attention with each stage's image pulled to its pair's real image (pixel term, lambda_pixel = 100)",
        {**_FIRST_ATTENTION, "lambda_pixel": 100.0},
        _NO_CLIP,
    ),
    "pixel-word-rnn": (
        "word-rnn with the pixel term (lambda_pixel = 100): the GRU-read words bind each colour to its place",
        {**_WORD_RNN, "lambda_pixel": 100.0},
        _NO_CLIP,
    ),
    "place-labels": (
        "word-rnn against discriminators that also classify each quadrant's digit and colour, learnt on real images, "
        "the generator's images classified as their captions say (AC-GAN, place_label_classes)",
        {**_WORD_RNN, **_PLACE_LABELS},
        _NO_CLIP,
    ),
    "place-labels-5": (
        "place-labels with the classification at lambda_place_labels = 5 (as heavy as the DAMSM term)",
        {**_WORD_RNN, **_PLACE_LABELS, "lambda_place_labels": 5.0},
        _NO_CLIP,
    ),
    "place-labels-5-damsm1": (
        "place-labels-5 with the generated-image matching (DAMSM, eq. 11) at lambda 1 instead of 5: the classifier's "
        "term no longer outweighed by it",
        {**_WORD_RNN, **_PLACE_LABELS, "lambda_place_labels": 5.0, "lambda_fake_image_damsm": 1.0},
        _NO_CLIP,
    ),
    "region-labels": (
        "word-rnn with the place classifier on the frozen image encoder's quadrant regions (place_classifier "
        "'regions', lambda_place_labels = 5) instead of in the discriminators",
        {**_WORD_RNN, **_PLACE_LABELS, "place_classifier": "regions", "lambda_place_labels": 5.0},
        _NO_CLIP,
    ),
    "place-labels-pixel": (
        "place-labels with the pixel term at lambda_pixel = 10 (colour and place from the pixels, the digits' shapes "
        "from the classifier)",
        {**_WORD_RNN, **_PLACE_LABELS, "lambda_pixel": 10.0},
        _NO_CLIP,
    ),
    "captioner": ("the captioner alone (no generator), phase2_generators.yaml's optimiser", _ONLY_CAPTIONER, []),
    "captioner-fast": (
        "the captioner alone at learning rate 1e-3",
        _ONLY_CAPTIONER,
        ["--learning_rate", "1e-3"],
    ),
}
_REPORTED = (
    "judge_object_accuracy",
    "judge_pair_accuracy",
    "judge_r_precision@1",
    "judge_place",
    "judge_digit",
    "judge_digit_from_other",
    "judge_color",
    "judge_color_from_other",
    "r_precision@1",
    "real_r_precision@1",
    "caption_teacher_forcing_accuracy",
    "caption_object_accuracy",
    "caption_pair_accuracy",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--init_from", required=True, help="a phase-1 (vta) output folder of train_laviter.py")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="variants to run")
    p.add_argument("--output_dir", default="outputs/laviter-probes", help="one run folder per variant, and the table")
    p.add_argument("--max_steps", type=int, default=1500, help="phase-2 steps of every variant")
    p.add_argument("--batch_size", type=int, default=32, help="pairs per step")
    p.add_argument("--eval_images", type=int, default=500, help="test captions scored")
    p.add_argument("--seed", type=int, default=0, help="seed of every variant")
    p.add_argument(
        "--readout_examples", type=int, default=4000, help="training pairs the linear read-outs are fitted on"
    )
    p.add_argument(
        "--train_examples", type=int, default=None, help="Caption MNIST training pairs (default: phase 2's)"
    )
    p.add_argument("--test_examples", type=int, default=None, help="test pairs generated (default: phase 2's)")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache of the prepared Caption MNIST data")
    p.add_argument("--results_file", default=None, help="also merge each variant as probe/<variant> into this file")
    p.add_argument(
        "--regression_steps",
        type=int,
        default=0,
        help="instead of phase 2, train each variant's generator by the pixel term alone for this many steps and "
        "report the layout of its images (regression.json / .md)",
    )
    return p.parse_args(argv)


def variant_argv(name: str, args: argparse.Namespace) -> list[str]:
    """The ``train_laviter.py`` arguments of one variant."""
    _, model_config, extra = VARIANTS[name]
    argv = [
        "--config", str(HERE / "configs" / "phase2_generators.yaml"),
        "--init_from", args.init_from,
        "--output_dir", str(Path(args.output_dir) / name),
        "--model_config", json.dumps({**_ONLY_GENERATOR, **model_config}),
        "--max_steps", str(args.max_steps),
        "--batch_size", str(args.batch_size),
        "--eval_steps", str(max(args.max_steps // 3, 1)),
        "--checkpointing_steps", str(max(args.max_steps // 3, 1)),
        "--eval_images", str(args.eval_images),
        "--r_precision_candidates", str(min(100, args.eval_images)),
        "--seed", str(args.seed),
        "--resume_from_checkpoint", "latest",
        "--run_name", f"probe/{name}",
        *extra,
    ]  # fmt: skip
    for option in ("dataset_cache_dir", "train_examples", "test_examples"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", str(getattr(args, option))]
    if args.results_file:
        argv += ["--results_file", args.results_file]
    return argv


@torch.no_grad()
def encoder_readout(args) -> dict[str, float]:
    """How much the phase-1 features the generator is conditioned on carry each quadrant's digit and colour: linear
    read-outs (``mmquant.metrics.readout``) fitted on ``--readout_examples`` training pairs and tested on the first
    ``--eval_images`` test pairs, from the sentence feature and from the global image feature."""
    from transformers import AutoTokenizer

    from mmquant.data.caption_grammar import QUADRANTS, parse_caption
    from mmquant.data.caption_mnist import DEFAULT_COLORS
    from mmquant.data.pairs import load_caption_mnist_pairs
    from mmquant.metrics.readout import content_labels, linear_readout
    from mmquant.models.laviter import LaviterModel

    model = LaviterModel.from_pretrained(args.init_from).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.init_from)
    sizes = {"train": args.train_examples or 20000, "test": args.test_examples or 1000}
    c = model.config
    _, pairs = load_caption_mnist_pairs("quad2", sizes, c.text_config.max_length, args.dataset_cache_dir, tokenizer)
    splits = {}
    for split, n in (("train", args.readout_examples), ("test", args.eval_images)):
        part = pairs[split].resized(c.vision_config.image_size).head(n)
        objects = [[vars(o) for o in parse_caption(t, DEFAULT_COLORS)] for t in part.captions]
        features = {
            "sentence": model.get_text_features(part.input_ids),
            "image": model.get_image_features(part.pixel_values(slice(None))),
        }
        splits[split] = (features, content_labels(objects, list(QUADRANTS), list(DEFAULT_COLORS)))
    (fit_x, fit_y), (test_x, test_y) = splits["train"], splits["test"]
    result = {}
    for modality in ("sentence", "image"):
        for attribute in ("digit", "color"):
            keys = [k for k in fit_y if k.endswith(attribute)]
            scores = [linear_readout(fit_x[modality], fit_y[k], test_x[modality], test_y[k]) for k in keys]
            result[f"{modality}_readout_{attribute}"] = round(sum(scores) / len(scores), 4)
    return result


def regression_probe(args, name: str) -> dict[str, float]:
    """The variant's generator alone, trained by the pixel term only (squared difference to the pair's real image;
    no discriminator, no DAMSM) for ``--regression_steps`` at learning rate 1e-3 on the frozen phase-1 encoders, then
    the layout of its images for the first ``--eval_images`` test captions (``quadrant_layout_accuracy``: the
    regression draws average digits, which the judge cannot read, but their places and colours show): can the
    conditioning bind each colour to its place when it is told directly?"""
    sys.path.insert(0, str(HERE))
    import train_laviter

    from mmquant.metrics.layout import quadrant_layout_accuracy
    from mmquant.models.laviter.modeling_laviter import _pixel_loss

    model, _, train, test = train_laviter.load_model_and_data(train_laviter.parse_args(variant_argv(name, args)))
    model.set_phase("generators")
    model.train()
    torch.manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(args.regression_steps):
        rows = torch.randint(len(train), (args.batch_size,))
        ids = train.input_ids[rows]
        mask = model._text_mask(ids, None)
        with torch.no_grad():
            words, sentence = model.text_encoder(ids, mask)
        images, _, _ = model.generator(model._noise(len(ids), None, ids.device), sentence, words, mask)
        loss = _pixel_loss(images, train.pixel_values(rows))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    n = min(args.eval_images, len(test))
    layout = quadrant_layout_accuracy(model.generate_images(test.input_ids[:n]), test.captions[:n])
    real = quadrant_layout_accuracy(test.pixel_values(torch.arange(n)), test.captions[:n])
    return {f"layout_{k}": round(v, 4) for k, v in layout.items()} | {f"real_layout_{k}": v for k, v in real.items()}


def _regression_table(args, out: Path, readout: dict) -> dict:
    """``--regression_steps``: every variant's :func:`regression_probe`, as ``regression.json`` / ``regression.md``
    (and ``probe-regression/<variant>`` in ``--results_file``)."""
    from mmquant.training import command_line, git_commit, merge_result

    table = {}
    for name in args.variants:
        table[name] = {"what": VARIANTS[name][0], **regression_probe(args, name)}
        if args.results_file:
            entry = {"command": command_line(), "commit": git_commit(HERE), "steps": args.regression_steps}
            metrics = [{"metric": k, "split": "test", "value": v} for k, v in table[name].items() if k != "what"]
            merge_result(args.results_file, f"probe-regression/{name}", entry | {"metrics": metrics})
    (out / "regression.json").write_text(json.dumps({"encoder_readout": readout, "variants": table}, indent=2) + "\n")
    keys = [k for k in next(iter(table.values())) if k != "what"]
    lines = ["| variant | " + " | ".join(keys) + " | what |", "|---" * (len(keys) + 2) + "|"]
    lines += [f"| {n} | " + " | ".join(str(r[k]) for k in keys) + f" | {r['what']} |" for n, r in table.items()]
    (out / "regression.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return {"encoder_readout": readout, "variants": table}


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    readout = encoder_readout(args)
    (out / "readout.json").write_text(json.dumps(readout, indent=2) + "\n")
    print(json.dumps(readout))
    table = {}
    if args.regression_steps:
        return _regression_table(args, out, readout)
    for name in args.variants:
        finished = Path(args.output_dir) / name / "eval_results.json"
        if not finished.is_file():  # a finished variant is read back (delete its folder to rerun it)
            command = [sys.executable, str(HERE / "train_laviter.py"), *variant_argv(name, args)]
            subprocess.run(command, check=True)  # one process per run: a fresh accelerate state and seed
        result = json.loads(finished.read_text())
        metrics = {m["metric"]: m["value"] for m in result.get("metrics", [])}
        table[name] = {"what": VARIANTS[name][0], **{k: metrics.get(k) for k in _REPORTED}}  # None: no such module
    (out / "probes.json").write_text(json.dumps({"encoder_readout": readout, "variants": table}, indent=2) + "\n")
    lines = [
        f"Phase-1 features of {args.init_from}, linear read-out per quadrant (digit 0-9 or empty; colour or empty): "
        + ", ".join(f"{k} {v}" for k, v in readout.items()),
        "",
        "| variant | " + " | ".join(_REPORTED) + " | what |",
        "|---" * (len(_REPORTED) + 2) + "|",
    ]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(str(row[k]) for k in _REPORTED) + f" | {row['what']} |")
    (out / "probes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return {"encoder_readout": readout, "variants": table}


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(argv), prog="probe_generators.py"))

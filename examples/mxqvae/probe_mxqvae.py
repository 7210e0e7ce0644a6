"""Probes of a trained MXQ-VAE pipeline (stage 1 + prior): where the semantic consistency of generated pairs is lost,
and why text -> image does not follow its caption.

    python examples/mxqvae/probe_mxqvae.py                       # the shipped Quad4 pipeline on Quad4 test pairs
    python examples/mxqvae/probe_mxqvae.py --pipeline outputs/mxqvae-prior-quad4/pipeline --dataset_config quad4
    python examples/mxqvae/probe_mxqvae.py --results_file examples/mxqvae/results/caption_mnist.json  # "probes-quad4"

On ``--test_examples`` test pairs of ``--dataset_config`` (scored by the Caption MNIST judge and grammar):

* **prior_nll** (a): mean negative log-likelihood per code (nats) under the prior (and how often the real code is
  its most likely one, ``_top1``), at image and at text positions, in both orders (image-first, text-first), of the
  real test code sequences, of as many training sequences (the first training pairs: a gap to the test figures is
  overfitting), of the test sequences with the image codes taken from another pair (how much the prior uses one
  modality to predict the other), and of the sampled sequences of the reference setting.
* **text_codes** (b): captions decoded from the stage-1 codes of (real image, caption), of (masked image = zeros, as
  the pipeline's text prefix, caption), of (black canvas, caption), of (another pair's image, caption), and of the
  real codes with the image positions replaced by another pair's image codes or the text positions by the
  masked-image encoding's; each scored against the true caption (object accuracy, all objects right, parse rate)
  and, where a donor pair gave the image or its codes, against the donor's caption. Also how many text-position
  codes stay the same when the image is masked.
* **image_codes** (c): the judge on images decoded from sampled codes vs on stage-1 reconstructions of real pairs (and
  on the real images): objects seen per image, judge confidence (digit, colour), share of occupied quadrants read with
  both confidences >= 0.9 ("readable"); for sampled pairs, per-object agreement of caption and image (digit, colour)
  and the most frequent digits.
* **sampling** (d): consistency, object accuracy and parse rate of ``--setting_samples`` unconditional pairs per
  sampling setting (temperature, top-k, top-p; image-first and text-first order, which the prior is trained for).
* **text_to_image / image_to_text** (e): the pipeline's conditional generation as the README does it, on
  ``--conditional_inputs`` test captions / images with ``--per_input`` samples each, judged against the input; the
  same with the prefix taken from the real pair's codes (an oracle prefix: is it the prefix or the prior that loses
  the input?), sampled with top-k 10 and greedily (top-k 1), and the caption decoded from the text prefix itself.
* **refinement** (f): the pipeline's two sampling steps that are not in the paper (``text_temperature``, ``refine``),
  one at a time and together, on ``--setting_samples`` unconditional pairs and on ``--conditional_inputs`` test
  images (image -> text, one caption each; and stage 1 alone reading an image into another pair's caption); and
  image masking: the image stage 1 decodes from (real image with 0/30/60/100% of its patches masked, another pair's
  caption), scored against that caption and against the image's own (can stage 1 draw what a caption says?).
  ``--only_refinement`` runs this probe alone.

Writes ``<output_dir>/probe.json`` (default ``outputs/mxqvae-probe``) and prints a diagnosis table; ``--results_file``
merges the figures under ``probes-<name>``.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import mmquant
from mmquant.arguments import make_parser
from mmquant.data.caption_grammar import QUADRANTS, CaptionParseError, parse_caption
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.pairs import load_caption_mnist_pairs
from mmquant.metrics.consistency import load_judge, semantic_consistency
from mmquant.models.caption_mnist_judge import POSITIONS
from mmquant.training import command_line, git_commit, merge_result, repo_relative
from mmquant.user_errors import check_input_paths

try:
    from evaluate_mxqvae import reconstruct
    from train_mxqvae_prior import encode_pairs
except ImportError:  # pragma: no cover
    from .evaluate_mxqvae import reconstruct
    from .train_mxqvae_prior import encode_pairs

HERE = Path(__file__).resolve().parent
READABLE = 0.9  # judge confidence (digit and colour) above which an occupied quadrant counts as readable
# (temperature, top_k, top_p, text_first) of the sampling probe; the first is the reference setting (top-k 10)
SETTINGS = [
    (1.0, 10, None, False),
    (1.0, 3, None, False),
    (1.0, 50, None, False),
    (1.0, None, None, False),
    (1.0, None, 0.9, False),
    (0.7, 10, None, False),
    (0.5, 10, None, False),
    (1.0, 10, None, True),
    (0.7, 10, None, True),
]


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--pipeline", default="mxqvae-caption-mnist-quad4", help="a zoo name or an MXQ-VAE pipeline folder")
    p.add_argument("--dataset_config", default="quad4", help="Caption MNIST layout of the test pairs")
    p.add_argument("--test_examples", type=int, default=500, help="test pairs probed (a, b, c)")
    p.add_argument(
        "--num_samples", type=int, default=300, help="unconditional samples of the reference setting (a, c)"
    )
    p.add_argument("--setting_samples", type=int, default=100, help="unconditional samples per sampling setting (d)")
    p.add_argument("--conditional_inputs", type=int, default=12, help="test captions and images completed (e)")
    p.add_argument("--per_input", type=int, default=8, help="samples per conditional input (e)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache of the generated Caption MNIST pairs")
    p.add_argument("--judge", default=None, help="Caption MNIST judge folder (default: the shipped one)")
    p.add_argument("--name", default="quad4", help="results key: probes-<name>")
    p.add_argument("--output_dir", default="outputs/mxqvae-probe", help="where probe.json is written")
    p.add_argument("--results_file", default=None, help="results file to merge the figures into (off by default)")
    p.add_argument("--num_threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--only_refinement",
        action="store_true",
        help="run probe (f) alone (a few minutes instead of ~45 on one CPU thread)",
    )
    args = p.parse_args(argv)
    for name in ("test_examples", "num_samples", "setting_samples", "conditional_inputs", "per_input"):
        if getattr(args, name) < 2:
            p.error(f"--{name} must be >= 2")
    if args.conditional_inputs > args.test_examples:
        p.error("--conditional_inputs must be <= --test_examples")
    check_input_paths(p, args, pipeline="model", judge="model")
    return args


# ---------------------------------------------------------------------- helpers
def _objects(caption: str) -> frozenset | None:
    try:
        return frozenset(parse_caption(caption, DEFAULT_COLORS))
    except CaptionParseError:
        return None


def caption_agreement(decoded: list[str], reference: list[str]) -> dict[str, float]:
    """How much of each `reference` caption a `decoded` caption says: the share of the reference's objects (position,
    digit, colour) it names, the share of decoded captions naming exactly the reference's objects, its parse rate."""
    named = total = exact = parsed = 0
    for text, ref in zip(decoded, reference):
        objects, truth = _objects(text), _objects(ref)
        total += len(truth)
        if objects is None:
            continue
        parsed += 1
        named += len(objects & truth)
        exact += objects == truth
    n = len(decoded)
    return {"object_accuracy": named / total, "all_objects_right": exact / n, "parse_rate": parsed / n}


def decode(stage1, tokenizer, codes: torch.Tensor, batch_size: int = 250) -> tuple[torch.Tensor, list[str]]:
    """Codes -> (images (N, 3, H, W) in [-1, 1] on the uint8 grid the pipeline returns, captions)."""
    images, captions = [], []
    for start in range(0, len(codes), batch_size):
        x, ids = stage1.decode_indices(codes[start : start + batch_size])
        images.append(((x + 1) * 127.5).round() / 127.5 - 1)
        captions += tokenizer.batch_decode(ids, skip_special_tokens=True)
    return torch.cat(images), captions


@torch.no_grad()
def encode(stage1, images: torch.Tensor, input_ids: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    return torch.cat(
        [
            stage1.encode_to_indices(images[s : s + batch_size], input_ids[s : s + batch_size])
            for s in range(0, len(images), batch_size)
        ]
    )


@torch.no_grad()
def code_nll(prior, codes: torch.Tensor, text_first: bool, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """`(N, num_tokens)` NLL (nats) of each code given the codes before it in the chosen order, and whether it is the
    prior's most likely code there (teacher forcing); both in canonical order."""
    n = codes.shape[1]
    order = prior._text_first_order(codes.device) if text_first else torch.arange(n)
    nlls, hits = [], []
    for start in range(0, len(codes), batch_size):
        seq = prior.to_sequence(codes[start : start + batch_size], text_first)
        logits = prior(input_ids=seq).logits[:, :-1].float()
        nll = F.cross_entropy(logits.transpose(1, 2), seq[:, 1:], reduction="none")  # sequence order
        hit = (logits.argmax(-1) == seq[:, 1:]).float()
        nll_c, hit_c = torch.empty_like(nll), torch.empty_like(hit)
        nll_c[:, order], hit_c[:, order] = nll, hit
        nlls.append(nll_c)
        hits.append(hit_c)
    return torch.cat(nlls), torch.cat(hits)


def nll_split(prior, codes: torch.Tensor, n_img: int) -> dict[str, float]:
    """Mean NLL per code and top-1 accuracy at image and text positions, in both orders."""
    result = {}
    for text_first in (False, True):
        nll, hit = code_nll(prior, codes, text_first)
        order = "text_first" if text_first else "image_first"
        for part, cols in (("image", slice(None, n_img)), ("text", slice(n_img, None))):
            result[f"{order}/{part}"] = round(float(nll[:, cols].mean()), 4)
            result[f"{order}/{part}_top1"] = round(float(hit[:, cols].mean()), 4)
    return result


@torch.no_grad()
def judge_readings(judge, pixel_values: torch.Tensor, single: bool, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Per canvas and read position: digit (10 = empty), colour word index in DEFAULT_COLORS, their confidences."""
    slots = [len(POSITIONS) - 1] if single else list(range(len(QUADRANTS)))
    colors = [judge.config.colors.index(c) for c in DEFAULT_COLORS]
    digit_p, color_p = [], []
    for start in range(0, len(pixel_values), batch_size):
        out = judge(pixel_values[start : start + batch_size].to(judge.dtype), return_dict=True)
        digit_p.append(out.digit_logits[:, slots].float().softmax(-1))
        color_p.append(out.color_logits[:, slots][..., colors].float().softmax(-1))
    digit_p, color_p = torch.cat(digit_p), torch.cat(color_p)
    return {
        "digit": digit_p.argmax(-1),
        "color": color_p.argmax(-1),
        "digit_conf": digit_p.max(-1).values,
        "color_conf": color_p.max(-1).values,
        "positions": [POSITIONS[s] for s in slots],
        "empty": judge.config.empty_class,
    }


def reading_stats(r: dict) -> dict[str, float]:
    occupied = r["digit"] != r["empty"]
    readable = occupied & (r["digit_conf"] >= READABLE) & (r["color_conf"] >= READABLE)
    n_occ = max(int(occupied.sum()), 1)
    return {
        "objects_per_image": round(float(occupied.sum(1).float().mean()), 3),
        "digit_confidence": round(float(r["digit_conf"][occupied].sum()) / n_occ, 4),
        "color_confidence": round(float(r["color_conf"][occupied].sum()) / n_occ, 4),
        "readable_share": round(int(readable.sum()) / n_occ, 4),
    }


def pair_agreement(r: dict, captions: list[str]) -> dict:
    """Per object named by a parsed caption: does the judge read the same digit / colour at its position?"""
    index = {p: i for i, p in enumerate(r["positions"])}
    digit = color = both = total = 0
    caption_digits, image_digits = collections.Counter(), collections.Counter()
    for k, caption in enumerate(captions):
        for slot in range(len(index)):
            if r["digit"][k, slot] != r["empty"]:
                image_digits[int(r["digit"][k, slot])] += 1
        objects = _objects(caption)
        for obj in objects or ():
            caption_digits[obj.digit] += 1
            slot = index.get(obj.position)
            if slot is None:
                continue
            d = int(r["digit"][k, slot]) == obj.digit
            c = DEFAULT_COLORS[int(r["color"][k, slot])] == obj.color and int(r["digit"][k, slot]) != r["empty"]
            digit, color, both, total = digit + d, color + c, both + (d and c), total + 1
    total = max(total, 1)

    def top(counter):
        n = max(sum(counter.values()), 1)
        return {str(d): round(v / n, 3) for d, v in counter.most_common(3)}

    return {
        "digit_agreement": round(digit / total, 4),
        "color_agreement": round(color / total, 4),
        "object_agreement": round(both / total, 4),
        "top_image_digits": top(image_digits),
        "top_caption_digits": top(caption_digits),
    }


def scores(images: torch.Tensor, captions: list[str], judge) -> dict[str, float]:
    return {k: round(v, 4) for k, v in semantic_consistency(images, captions, judge).items()}


def rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


# ---------------------------------------------------------------------- probes
def probe_text_codes(stage1, tokenizer, pairs, real_codes: torch.Tensor) -> dict:
    """(b): what the text-position codes carry of the caption on their own."""
    c = stage1.config
    n_img, n = c.num_image_tokens, len(pairs)
    x = pairs.pixel_values(torch.arange(n))
    donor = torch.roll(torch.arange(n), 1)  # pair i takes pair i-1's image codes
    masked_codes = encode(stage1, torch.zeros_like(x), pairs.input_ids)
    other_image_codes = encode(stage1, x[donor], pairs.input_ids)  # the caption with another pair's image
    black_codes = encode(stage1, torch.full_like(x, -1.0), pairs.input_ids)
    swapped = torch.cat([real_codes[donor, :n_img], real_codes[:, n_img:]], 1)
    masked_text_real_image = torch.cat([real_codes[:, :n_img], masked_codes[:, n_img:]], 1)
    masked_text_donor_image = torch.cat([real_codes[donor, :n_img], masked_codes[:, n_img:]], 1)
    donor_captions = [pairs.captions[i] for i in donor.tolist()]
    result = {}
    variants = {
        "real_image": real_codes,
        "masked_image": masked_codes,
        "black_image": black_codes,
        "other_pairs_image": other_image_codes,
        "image_codes_from_other_pair": swapped,
        "masked_image_text_codes+real_image_codes": masked_text_real_image,
        "masked_image_text_codes+other_image_codes": masked_text_donor_image,
    }
    for name, codes in variants.items():
        _, captions = decode(stage1, tokenizer, codes)
        entry = rounded(caption_agreement(captions, pairs.captions))
        if "other" in name:  # the donor gave the image (or its codes): does the caption follow it instead?
            entry["donor_object_accuracy"] = round(caption_agreement(captions, donor_captions)["object_accuracy"], 4)
        result[name] = entry
    result["text_codes_unchanged_by_masking_image"] = round(
        float((masked_codes[:, n_img:] == real_codes[:, n_img:]).float().mean()), 4
    )
    # stage 1's own reconstruction (the forward pass, not the code round trip): the ceiling of every row above
    recon = tokenizer.batch_decode(reconstruct(stage1, pairs), skip_special_tokens=True)
    result["forward_reconstruction"] = rounded(caption_agreement(recon, pairs.captions))
    return result


def sample(pipe, n: int, seed: int, temperature=1.0, top_k=10, top_p=None, text_first=False, prefix=None):
    return pipe.prior.sample_codes(
        n, prefix=prefix, text_first=text_first, temperature=temperature, top_k=top_k, top_p=top_p,
        generator_seed=seed,
    )  # fmt: skip


def probe_conditional(pipe, judge, pairs, real_codes: torch.Tensor, args) -> tuple[dict, dict]:
    """(e): text -> image and image -> text, with the pipeline's prefixes and with the real pairs' codes as prefix."""
    c = pipe.stage1.config
    n_img, k, m = c.num_image_tokens, args.conditional_inputs, args.per_input
    captions = pairs.captions[:k]
    t2i = {"pipeline": [[], []], "oracle_prefix": [[], []], "oracle_prefix_greedy": [[], []]}
    prefix_captions = []
    i2t = {"pipeline": [], "oracle_prefix": [], "oracle_prefix_greedy": []}
    for i in range(k):
        seed = args.seed + i
        out = pipe(num_samples=m, caption=captions[i], seed=seed, top_k=10)
        t2i["pipeline"][0].append(torch.stack([_pil_to_tensor(im) for im in out.images]))
        t2i["pipeline"][1] += out.captions
        prefix = pipe._prefix_from_caption(captions[i])  # the README's text prefix: (masked image, caption)
        blank_image_codes = pipe.stage1.encode_to_indices(
            torch.zeros(1, c.in_channels, c.image_size, c.image_size), pairs.input_ids[i : i + 1]
        )[:, :n_img]
        prefix_captions += decode(pipe.stage1, pipe.tokenizer, torch.cat([blank_image_codes, prefix], 1))[1]
        for name, top_k in (("oracle_prefix", 10), ("oracle_prefix_greedy", 1)):
            codes = sample(pipe, m, seed, top_k=top_k, prefix=real_codes[i : i + 1, n_img:], text_first=True)
            images, generated = decode(pipe.stage1, pipe.tokenizer, codes)
            t2i[name][0].append(images)
            t2i[name][1] += generated
            codes = sample(pipe, m, seed, top_k=top_k, prefix=real_codes[i : i + 1, :n_img])
            i2t[name] += decode(pipe.stage1, pipe.tokenizer, codes)[1]
        i2t["pipeline"] += pipe(num_samples=m, image=pairs.image_array(i), seed=seed, top_k=10).captions
    repeated = [cap for cap in captions for _ in range(m)]
    text_to_image = {}
    for name, (images, generated) in t2i.items():
        judged = semantic_consistency(torch.cat(images), repeated, judge)
        text_to_image[name] = {
            "pair_accuracy": round(judged["consistency"], 4),  # the judge reads exactly the caption's objects
            "object_accuracy": round(judged["object_accuracy"], 4),
            "generated_caption_object_accuracy": round(caption_agreement(generated, repeated)["object_accuracy"], 4),
        }
    text_to_image["prefix_decoded_to_text"] = rounded(caption_agreement(prefix_captions, captions))
    text_to_image["inputs"], text_to_image["per_input"] = k, m
    real_images = pairs.pixel_values(torch.arange(k)).repeat_interleave(m, 0)
    image_to_text = {}
    for name, generated in i2t.items():
        agreement = caption_agreement(generated, repeated)
        image_to_text[name] = {
            "pair_accuracy": round(agreement["all_objects_right"], 4),
            "object_accuracy": round(agreement["object_accuracy"], 4),
            "parse_rate": round(agreement["parse_rate"], 4),
            "judge_consistency": round(semantic_consistency(real_images, generated, judge)["consistency"], 4),
        }
    image_to_text["inputs"], image_to_text["per_input"] = k, m
    return text_to_image, image_to_text


def probe_refinement(pipe, judge, pairs, args) -> dict:
    """(f): the pipeline's two sampling steps that are not in the paper, one at a time, and whether stage 1 can draw
    a caption's objects at all (image masking: the image decoded from (masked image, another pair's caption))."""
    from mmquant.pipelines import MXQVAEPipeline

    c, n = pipe.stage1.config, args.setting_samples
    settings = {
        "paper": MXQVAEPipeline.PAPER_SAMPLING,
        "text_temperature_0.2": {"text_temperature": 0.2, "refine": False},
        "refine": {"text_temperature": None, "refine": True},
        "text_temperature_0.2_and_refine": {"text_temperature": 0.2, "refine": True},
    }
    unconditional = {}
    for name, kwargs in settings.items():
        out = pipe(num_samples=n, seed=args.seed + 1, **kwargs)
        unconditional[name] = scores(torch.stack([_pil_to_tensor(im) for im in out.images]), out.captions, judge)
    k = args.conditional_inputs
    real = pairs.pixel_values(torch.arange(k))
    image_to_text = {}
    for name in ("paper", "text_temperature_0.2_and_refine"):
        described = []
        for i in range(k):
            described += pipe(num_samples=1, image=pairs.image_array(i), seed=args.seed + i, **settings[name]).captions
        image_to_text[name] = scores(real, described, judge)
    donor = torch.roll(torch.arange(k), 1)  # stage 1 alone, another pair's real caption as the template
    template = pairs.input_ids[:k][donor]
    image_to_text["stage1_other_caption_template"] = scores(
        real, decode(pipe.stage1, pipe.tokenizer, pipe.stage1.encode_to_indices(real, template))[1], judge
    )
    masking, ratio = {}, c.image_mask_ratio
    generator = torch.Generator().manual_seed(args.seed)
    donor_captions = [pairs.captions[i] for i in donor]
    try:
        for r in (0.0, 0.3, 0.6, 1.0):
            c.image_mask_ratio = r
            masked = pipe.stage1.mask_image(real, generator=generator) if r < 1 else torch.zeros_like(real)
            drawn = decode(pipe.stage1, pipe.tokenizer, pipe.stage1.encode_to_indices(masked, template))[0]
            masking[f"mask_{r:g}"] = {
                "given_caption_object_accuracy": scores(drawn, donor_captions, judge)["object_accuracy"],
                "own_image_object_accuracy": scores(drawn, pairs.captions[:k], judge)["object_accuracy"],
            }
    finally:
        c.image_mask_ratio = ratio
    return {"unconditional": unconditional, "image_to_text": image_to_text, "image_masking": masking,
            "samples": n, "inputs": k}  # fmt: skip


def _pil_to_tensor(image) -> torch.Tensor:
    from mmquant.data.collate import image_to_tensor

    return image_to_tensor(image)


# ---------------------------------------------------------------------- main
def main(args) -> dict:
    from mmquant.pipelines import MXQVAEPipeline

    torch.set_num_threads(args.num_threads)
    started, cpu_started = time.time(), time.process_time()
    command, commit = command_line(), git_commit(HERE)
    pipe = MXQVAEPipeline.from_pretrained(mmquant.zoo.resolve(args.pipeline))
    stage1, prior, tokenizer = pipe.stage1.eval(), pipe.prior.eval(), pipe.tokenizer
    judge = load_judge(args.judge)
    c = stage1.config
    n_img = c.num_image_tokens
    single = args.dataset_config.startswith("single")
    # the first training pairs are the first pairs the prior was trained on (Caption MNIST pairs are seeded by index)
    sizes = {"train": args.test_examples, "test": args.test_examples}
    _, splits = load_caption_mnist_pairs(
        args.dataset_config, sizes, c.max_text_length, args.dataset_cache_dir, tokenizer
    )
    pairs = splits["test"].resized(c.image_size)
    seconds = {}

    def lap(name, t0):
        seconds[name] = round(time.time() - t0, 1)
        return time.time()

    t = time.time()
    if args.only_refinement:
        report = {"refinement": probe_refinement(pipe, judge, pairs, args)}
        lap("refinement", t)
        return _finish(args, report, seconds, started, cpu_started, command, commit, len(pairs))
    real_codes = encode_pairs(stage1, pairs)
    sampled = sample(pipe, args.num_samples, args.seed)
    t = lap("encode_and_sample", t)

    # (a) prior likelihood
    donor = torch.roll(torch.arange(len(real_codes)), 1)
    mismatched = torch.cat([real_codes[donor, :n_img], real_codes[:, n_img:]], 1)
    prior_nll = {
        "real": nll_split(prior, real_codes, n_img),
        "train": nll_split(prior, encode_pairs(stage1, splits["train"].resized(c.image_size)), n_img),
        "real_other_pairs_image_codes": nll_split(prior, mismatched, n_img),
        "sampled_top_k_10": nll_split(prior, sampled, n_img),
        "uniform": round(float(np.log(c.codebook_size)), 4),
    }
    t = lap("prior_nll", t)

    # (b) what the text codes carry
    text_codes = probe_text_codes(stage1, tokenizer, pairs, real_codes)
    t = lap("text_codes", t)

    # (c) are sampled image codes readable digits?
    sampled_images, sampled_captions = decode(stage1, tokenizer, sampled)
    recon_images, recon_captions = decode(stage1, tokenizer, real_codes)
    real_images = pairs.pixel_values(torch.arange(len(pairs)))
    sampled_read = judge_readings(judge, sampled_images, single)
    image_codes = {
        "sampled": reading_stats(sampled_read) | pair_agreement(sampled_read, sampled_captions)
        | scores(sampled_images, sampled_captions, judge),
        "reconstructed": reading_stats(judge_readings(judge, recon_images, single))
        | scores(recon_images, pairs.captions, judge),
        "real": reading_stats(judge_readings(judge, real_images, single)) | scores(real_images, pairs.captions, judge),
        "reconstructed_own_caption": scores(recon_images, recon_captions, judge),
    }  # fmt: skip
    t = lap("image_codes", t)

    # (d) sampling settings and order
    sampling = []
    for temperature, top_k, top_p, text_first in SETTINGS:
        codes = sample(pipe, args.setting_samples, args.seed + 1, temperature, top_k, top_p, text_first)
        images, captions = decode(stage1, tokenizer, codes)
        read = reading_stats(judge_readings(judge, images, single))
        sampling.append(
            {"temperature": temperature, "top_k": top_k, "top_p": top_p,
             "order": "text_first" if text_first else "image_first", "samples": len(codes)}
            | scores(images, captions, judge)
            | {"readable_share": read["readable_share"], "distinct_captions": len(set(captions))}
        )  # fmt: skip
    t = lap("sampling", t)

    # (e) conditional generation
    text_to_image, image_to_text = probe_conditional(pipe, judge, pairs, real_codes, args)
    t = lap("conditional", t)

    # (f) the pipeline's refinement, and image masking
    refinement = probe_refinement(pipe, judge, pairs, args)
    lap("refinement", t)
    report = {
        "prior_nll": prior_nll,
        "text_codes": text_codes,
        "image_codes": image_codes,
        "sampling": sampling,
        "text_to_image": text_to_image,
        "image_to_text": image_to_text,
        "refinement": refinement,
    }
    return _finish(args, report, seconds, started, cpu_started, command, commit, len(pairs))


def _finish(args, report, seconds, started, cpu_started, command, commit, test_examples) -> dict:
    """Times, ``probe.json``, the results file (with ``--results_file``) and the printed diagnosis."""
    seconds["total_wall"] = round(time.time() - started, 1)
    seconds["total_cpu"] = round(time.process_time() - cpu_started, 1)
    report["seconds"] = seconds
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.results_file:
        entry = {
            "command": command,
            "commit": commit,
            "pipeline": repo_relative(args.pipeline) if Path(args.pipeline).exists() else args.pipeline,
            "dataset": f"caption_mnist/{args.dataset_config}",
            "test_examples": test_examples,
            "num_threads": args.num_threads,
            "probes": report,
        }
        merge_result(args.results_file, f"probes-{args.name}", entry)
    print_diagnosis(report)
    return report


def print_diagnosis(r: dict) -> None:
    rows = _diagnosis_rows(r) if "prior_nll" in r else []
    if "refinement" in r:
        f = r["refinement"]
        for name, s in f["unconditional"].items():
            rows.append((f"(f) unconditional consistency, {name}", f"{s['consistency']} (parse {s['parse_rate']})"))
        for name, s in f["image_to_text"].items():
            rows.append((f"(f) image->text pair accuracy, {name}", s["consistency"]))
        for name, s in f["image_masking"].items():
            rows.append((f"(f) image of ({name} image, other caption): given / own objects",
                         f"{s['given_caption_object_accuracy']} / {s['own_image_object_accuracy']}"))  # fmt: skip
    rows.append(("seconds (wall / cpu)", f"{r['seconds']['total_wall']} / {r['seconds']['total_cpu']}"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _diagnosis_rows(r: dict) -> list[tuple[str, object]]:
    a, b, c = r["prior_nll"], r["text_codes"], r["image_codes"]
    rows = [
        ("(a) prior NLL/code, real text | matched image", a["real"]["image_first/text"]),
        ("(a) prior NLL/code, real text | other pair's image", a["real_other_pairs_image_codes"]["image_first/text"]),
        ("(a) prior NLL/code, training pairs: image / text (image-first)",
         f"{a['train']['image_first/image']} / {a['train']['image_first/text']}"),
        ("(a) prior top-1 on real text codes | matched image", a["real"]["image_first/text_top1"]),
        ("(a) prior NLL/code, real image (image-first)", a["real"]["image_first/image"]),
        ("(a) prior NLL/code, real image | matched text (text-first)", a["real"]["text_first/image"]),
        ("(a) prior NLL/code, sampled image / text", f"{a['sampled_top_k_10']['image_first/image']} / "
                                                     f"{a['sampled_top_k_10']['image_first/text']}"),
        ("(b) caption objects from codes of (real image, caption)", b["real_image"]["object_accuracy"]),
        ("(b) ... of (masked image, caption)", b["masked_image"]["object_accuracy"]),
        ("(b) ... of (another pair's image, caption) (own / donor)",
         f"{b['other_pairs_image']['object_accuracy']} / {b['other_pairs_image']['donor_object_accuracy']}"),
        ("(b) ... with another pair's image codes (own / donor)",
         f"{b['image_codes_from_other_pair']['object_accuracy']} / "
         f"{b['image_codes_from_other_pair']['donor_object_accuracy']}"),
        ("(b) text codes unchanged when the image is masked", b["text_codes_unchanged_by_masking_image"]),
        ("(c) readable quadrants: sampled / reconstructed",
         f"{c['sampled']['readable_share']} / {c['reconstructed']['readable_share']}"),
        ("(c) objects per image: sampled / reconstructed",
         f"{c['sampled']['objects_per_image']} / {c['reconstructed']['objects_per_image']}"),
        ("(c) sampled pairs: digit / colour agreement per object",
         f"{c['sampled']['digit_agreement']} / {c['sampled']['color_agreement']}"),
        ("(c) consistency: sampled / reconstructed", f"{c['sampled']['consistency']} / "
                                                     f"{c['reconstructed']['consistency']}"),
    ]  # fmt: skip
    for s in r["sampling"]:
        setting = f"T={s['temperature']} top_k={s['top_k']} top_p={s['top_p']} {s['order']}"
        rows.append((f"(d) consistency {setting}", f"{s['consistency']} (parse {s['parse_rate']})"))
    t2i, i2t = r["text_to_image"], r["image_to_text"]
    rows += [
        ("(e) text->image pair accuracy: pipeline / oracle prefix",
         f"{t2i['pipeline']['pair_accuracy']} / {t2i['oracle_prefix']['pair_accuracy']}"),
        ("(e) text->image pair accuracy: oracle prefix, greedy", t2i["oracle_prefix_greedy"]["pair_accuracy"]),
        ("(e) text prefix decoded back to text: object accuracy", t2i["prefix_decoded_to_text"]["object_accuracy"]),
        ("(e) image->text pair accuracy: pipeline / oracle prefix",
         f"{i2t['pipeline']['pair_accuracy']} / {i2t['oracle_prefix']['pair_accuracy']}"),
        ("(e) image->text pair accuracy: oracle prefix, greedy", i2t["oracle_prefix_greedy"]["pair_accuracy"]),
    ]  # fmt: skip
    return rows


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="probe_mxqvae.py"))

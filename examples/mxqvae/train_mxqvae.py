"""Train MXQ-VAE stage 1 (the multimodal cross quantizer) on Caption MNIST with accelerate.

    python examples/mxqvae/train_mxqvae.py --config examples/mxqvae/configs/quad4.yaml
    python examples/mxqvae/train_mxqvae.py --config examples/mxqvae/configs/quad4.yaml --text_mask_ratio 0 \\
        --output_dir outputs/mxqvae-quad4-no-tc                                   # the "w/o TC" ablation
    python examples/mxqvae/train_mxqvae.py --config ... --resume_from_checkpoint latest
    python examples/mxqvae/train_mxqvae.py --config examples/mxqvae/configs/quad4_prefix_finetune.yaml \\
        --init_from outputs/mxqvae-quad4 --output_dir outputs/mxqvae-quad4-prefix   # continue a finished stage 1
    accelerate launch --config_file examples/accelerate_configs/cpu_2_processes.yaml \\
        examples/mxqvae/train_mxqvae.py --config ...  # two processes (README: "From this CPU to a cluster")

Images are masked (IM) and captions corrupted (TC) at the configured rates; the losses compare the reconstruction
with the clean pair. The caption tokenizer is trained on the training captions (plus the grammar's closed
vocabulary) and saved with the model. ``--init_from`` continues a finished stage 1 (its weights, tokenizer and
config, with this run's masking and one-modality options applied over it): a second phase with a new objective.
Writes into ``--output_dir``: ``args.json``, ``checkpoint-<step>/``,
``losses.jsonl``, ``samples/step-<k>.png`` (inputs over reconstructions, with the reconstructed captions),
``losses.png``, the final model and tokenizer (``save_pretrained``) and ``eval_results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.pairs import CaptionPairs, load_caption_mnist_pairs
from mmquant.losses.distributed import global_mean
from mmquant.metrics.functional import psnr
from mmquant.models.mxqvae import MXQVAEConfig, MXQVAEModel
from mmquant.training import (
    RUN_KEYS,
    GracefulStop,
    LossLog,
    add_micro_batch,
    add_training_arguments,
    backward_and_step,
    finish_run,
    load_yaml_defaults,
    make_accelerator,
    make_scheduler,
    mean_over_processes,
    plot_losses,
    process_batch_indices,
    progress_bar,
    save_captioned_grid,
    save_run_checkpoint,
    start_or_resume,
)

HERE = Path(__file__).resolve().parent
_RUN_KEYS = RUN_KEYS
_RESULT_CONFIG_KEYS = (
    "fusion",
    "image_mask_ratio",
    "text_mask_ratio",
    "text_corruption_groups",
    "text_replace_ratio",
    "text_only_ratio",
    "image_only_ratio",
    "prefix_consistency_weight",
)
_MODE_KEYS = ("text_only_ratio", "image_only_ratio", "prefix_consistency_weight")


def _word_groups(value: str):
    """`--text_corruption_words`: the shortcut "caption_mnist_slots" or a JSON list of word lists."""
    return value if value == "caption_mnist_slots" else json.loads(value)


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--config", help="YAML file of defaults for any argument below")
    p.add_argument(
        "--output_dir",
        default="outputs/mxqvae",
        help="where checkpoints, logs, samples, the final model and eval_results.json go",
    )
    p.add_argument("--dataset_config", default="quad4", help="Caption MNIST config: single, quad1 ... quad4")
    p.add_argument("--train_examples", type=int, default=50000, help="Caption MNIST training pairs to generate")
    p.add_argument("--test_examples", type=int, default=2000, help="test pairs to generate and score")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--model_config", type=json.loads, default={}, help="MXQVAEConfig fields as JSON")
    p.add_argument(
        "--init_from",
        default=None,
        help="a finished stage-1 folder to continue (weights, tokenizer, config; the options below override it)",
    )
    p.add_argument("--quantizer", choices=["vq", "optvq"], default=None, help="shared codebook: NN VQ or OptVQ")
    p.add_argument(
        "--fusion",
        choices=["cross", "shared_codebook_only"],
        default=None,
        help="cross: the cross-modal transformer; shared_codebook_only: the only-sharing-C ablation "
        "(default: the model config's)",
    )
    p.add_argument("--image_mask_ratio", type=float, default=None, help="IM rate (0 = the w/o IM ablation)")
    p.add_argument("--text_mask_ratio", type=float, default=None, help="TC rate (0 = the w/o TC ablation)")
    p.add_argument(
        "--text_corruption_words",
        type=_word_groups,
        default=None,
        help='groups of interchangeable words that TC corrupts (JSON, e.g. [["0", "1"], ["red", "blue"]]), or '
        '"caption_mnist_slots" for the digits and the colour words; default: any token (the reference)',
    )
    p.add_argument(
        "--text_replace_ratio", type=float, default=None, help="share of corrupted words replaced, not masked"
    )
    p.add_argument(
        "--text_only_ratio",
        type=float,
        default=None,
        help="share of each batch encoded from the caption alone (blank image): the text->image prefix",
    )
    p.add_argument(
        "--image_only_ratio",
        type=float,
        default=None,
        help="share of each batch encoded from the image alone (all-[MASK] caption): the image->text prefix",
    )
    p.add_argument(
        "--prefix_consistency_weight",
        type=float,
        default=None,
        help="weight of the pull of those rows' prefix positions to the clean pair's codes",
    )
    p.add_argument(
        "--degree_eval_config",
        default=None,
        help="a Caption MNIST Degree config (e.g. quad4_degree) scored at every evaluation (Table 1's metric)",
    )
    p.add_argument("--degree_eval_examples", type=int, default=200, help="Degree base pairs per evaluation")
    add_training_arguments(p, batch_size=32)
    args = load_yaml_defaults(p, argv)
    if args.batch_size < 1 or args.max_steps < 1 or args.gradient_accumulation_steps < 1:
        p.error("--batch_size, --max_steps and --gradient_accumulation_steps must be >= 1")
    return args


def model_config(args, tokenizer, base: MXQVAEConfig | None = None) -> MXQVAEConfig:
    """The stage-1 config: --model_config (over `base`, the --init_from model's), the ablation switches, and the
    tokenizer's vocabulary and ids."""
    fields = ({} if base is None else _config_fields(base)) | dict(args.model_config)
    if args.quantizer:
        q = fields.get("quantizer_config", {"codebook_size": 256, "beta": 0.25})
        fields["quantizer_config"] = {**q, "type": "vq" if args.quantizer == "vq" else "sinkhorn"}
    for key in ("fusion", "image_mask_ratio", "text_mask_ratio", "text_replace_ratio", *_MODE_KEYS):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.text_corruption_words:
        fields["text_corruption_groups"] = corruption_groups(args.text_corruption_words, tokenizer)
    return MXQVAEConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        **fields,
    )


def _config_fields(config: MXQVAEConfig) -> dict:
    """The MXQVAEConfig arguments of `config` (what `MXQVAEConfig(**fields)` rebuilds it from)."""
    import inspect

    # the vocabulary and its ids come from the tokenizer (model_config sets them)
    names = set(inspect.signature(MXQVAEConfig.__init__).parameters) - {"self", "kwargs", "vocab_size",
                                                                         "pad_token_id", "mask_token_id"}  # fmt: skip
    return {k: v for k, v in config.to_dict().items() if k in names}


def corruption_groups(words, tokenizer) -> list[list[int]]:
    """Token ids of `--text_corruption_words` (groups of words, or "caption_mnist_slots": digits, colours)."""
    if words == "caption_mnist_slots":
        words = [[str(d) for d in range(10)], list(DEFAULT_COLORS)]
    if isinstance(words, str) or not all(isinstance(g, list) for g in words):
        raise ValueError(
            f"--text_corruption_words: expected a list of word lists or 'caption_mnist_slots', got {words!r}."
        )
    unknown = sorted({w for g in words for w in g} - set(tokenizer.get_vocab()))
    if unknown:
        raise ValueError(f"--text_corruption_words: {unknown} are not in the caption tokenizer's vocabulary.")
    return [tokenizer.convert_tokens_to_ids(g) for g in words]


def load_data(args, max_text_length: int | None = None, tokenizer=None):
    """Train/test pairs of the Caption MNIST config and the tokenizer trained on the training captions (unless one is
    given)."""
    max_length = max_text_length or args.model_config.get("max_text_length", 48)
    sizes = {"train": args.train_examples, "test": args.test_examples}
    tokenizer, pairs = load_caption_mnist_pairs(
        args.dataset_config, sizes, max_length, args.dataset_cache_dir, tokenizer
    )
    return tokenizer, pairs["train"], pairs["test"]


@torch.no_grad()
def evaluate_stage1(model: MXQVAEModel, pairs: CaptionPairs, batch_size: int = 250) -> dict:
    """Clean-input reconstruction of the test pairs: PSNR, caption token accuracy, exact captions, code usage; and the
    share of prefix codes that a caption (an image) encoded alone shares with its clean pair's
    (`text_only_prefix_match`, `image_only_prefix_match`: what the pipeline's text->image / image->text prefixes get
    right)."""
    model.eval()
    psnrs, correct, total, exact, used = [], 0, 0, 0, set()
    n_img, matches = model.config.num_image_tokens, {"text_only_prefix_match": [], "image_only_prefix_match": []}
    for start in range(0, len(pairs), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pairs)))
        x, ids = pairs.pixel_values(index), pairs.input_ids[index]
        out = model(x, ids, return_loss=False)
        text_alone = model.encode_to_indices(*model.text_only_inputs(ids))[:, n_img:]
        image_alone = model.encode_to_indices(*model.image_only_inputs(x))[:, :n_img]
        matches["text_only_prefix_match"].append((text_alone == out.indices[:, n_img:]).float().flatten())
        matches["image_only_prefix_match"].append((image_alone == out.indices[:, :n_img]).float().flatten())
        psnrs.append(psnr(out.image_reconstruction.clamp(-1, 1), x, data_range=2.0, reduction="none"))
        pred, real = out.text_logits.argmax(-1), ids != model.config.pad_token_id
        correct += int(((pred == ids) & real).sum())
        total += int(real.sum())
        exact += int(((pred == ids) | ~real).all(1).sum())
        used.update(out.indices.flatten().tolist())
    model.train()
    return {
        "psnr": float(torch.cat(psnrs).mean()),
        "text_token_accuracy": correct / total,
        "caption_exact_match": exact / len(pairs),
        "code_usage": len(used) / model.config.codebook_size,
    } | {name: float(torch.cat(parts).mean()) for name, parts in matches.items()}


def load_degree_pairs(args, tokenizer) -> CaptionPairs | None:
    """The Degree test pairs scored during training (`--degree_eval_config`), or None."""
    if not args.degree_eval_config:
        return None
    from evaluate_mxqvae import degree_test_split

    ds = degree_test_split(args.degree_eval_config, args.degree_eval_examples, args.dataset_cache_dir)
    max_length = args.model_config.get("max_text_length", 48)
    return CaptionPairs.from_dataset(ds, tokenizer, max_length, extra_columns=["degree"])


def evaluate_degree(model: MXQVAEModel, tokenizer, pairs: CaptionPairs) -> dict:
    """Degree accuracy by token position (`degree_token_accuracy`) at each degree, clean inputs."""
    from evaluate_mxqvae import degree_slot_ids, reconstruct

    from mmquant.metrics.consistency import degree_token_accuracy

    recon = reconstruct(model, pairs)
    model.train()
    scores = degree_token_accuracy(recon, pairs.input_ids, pairs.extra["degree"], degree_slot_ids(tokenizer))
    return {f"degree_{d}": v for d, v in scores.items()}


def save_samples(model: MXQVAEModel, tokenizer, pairs: CaptionPairs, path: Path) -> None:
    model.eval()
    with torch.no_grad():
        index = torch.arange(6)
        x, ids = pairs.pixel_values(index), pairs.input_ids[index]
        out = model(x, ids, return_loss=False)
    model.train()
    texts = tokenizer.batch_decode(out.text_logits.argmax(-1), skip_special_tokens=True)
    images = torch.cat([x, out.image_reconstruction.clamp(-1, 1)])
    captions = [f"in: {c}" for c in pairs.captions[:6]] + [f"out: {t}" for t in texts]
    save_captioned_grid(images, captions, path, columns=6)


def _load_init(folder: str):
    """The finished stage 1 (model, tokenizer) that `--init_from` continues."""
    from transformers import AutoTokenizer

    from mmquant.hub.publish import check_model_folder

    try:
        check_model_folder(folder)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--init_from {folder}: no finished stage-1 model ({err}); train stage 1 first.") from None
    return MXQVAEModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def main(args) -> dict:
    output_dir = Path(args.output_dir)
    accelerator = make_accelerator(args, "mxqvae")  # seeded: the same initial weights on every process
    world = accelerator.num_processes
    init = _load_init(args.init_from) if args.init_from else None
    with accelerator.main_process_first():  # the main process generates (and caches) the pairs, the others read them
        max_length = init[0].config.max_text_length if init else None
        tokenizer, train, test = load_data(args, max_length, init[1] if init else None)
        degree_pairs = load_degree_pairs(args, tokenizer)
    if init:  # a second phase: the finished model's weights under this run's options
        model = MXQVAEModel(model_config(args, tokenizer, init[0].config))
        model.load_state_dict(init[0].state_dict())
    else:
        model = MXQVAEModel(model_config(args, tokenizer))
    if len(train) < args.batch_size:
        raise ValueError(f"--batch_size {args.batch_size} exceeds the {len(train)} training pairs.")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.max_steps, args.learning_rate, args.warmup_ratio)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    config = unwrapped.config

    run = start_or_resume(
        args, output_dir, model, optimizer, scheduler, run_keys=_RUN_KEYS, code_dir=HERE, accelerator=accelerator
    )
    log = LossLog(output_dir / "losses.jsonl", resume_step=run.step if run.resumed_from else None)
    bar = progress_bar(args.max_steps, initial=run.step, disable=not accelerator.is_local_main_process)
    keys = ("loss", "image_loss", "text_loss", "quantizer_loss", "text_accuracy", "usage", "perplexity")
    if config.prefix_consistency_weight > 0 and (config.text_only_ratio or config.image_only_ratio):
        keys += ("prefix_consistency_loss",)
    accumulation = args.gradient_accumulation_steps
    started = time.time()
    model.train()
    stop = GracefulStop(accelerator)  # Ctrl-C / SIGTERM: save a checkpoint at the end of the step and exit
    while run.step < args.max_steps:
        totals = {}
        for micro in range(accumulation):
            index = process_batch_indices(accelerator, run.step, micro, len(train), args)
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    out = model(train.pixel_values(index), train.input_ids[index])
                loss = out.loss
                if world > 1:
                    # the caption terms are means over this share's tokens: weighted to the global batch's means
                    ids = train.input_ids[index]
                    # the caption tokens each mean is over: also [PAD] with text_loss_on_padding, no image-only row's
                    counted = int(out.text_loss_tokens)
                    text_loss = global_mean(out.text_loss, counted)
                    loss = loss + config.text_loss_weight * (text_loss - out.text_loss)
                    out.text_loss, out.loss = text_loss, loss
                    t, i = unwrapped.mode_rows(len(ids))  # rows t .. t + i - 1 are image-only: no caption tokens
                    real = ids != config.pad_token_id
                    real[t : t + i] = False
                    out.text_accuracy = global_mean(out.text_accuracy, int(real.sum()))
                backward_and_step(accelerator, loss, optimizer)
            add_micro_batch(totals, {key: float(out[key].detach()) for key in keys}, accumulation)
        scheduler.step()
        run.step += 1
        totals = mean_over_processes(accelerator, totals)  # the logged figures are the global batch's
        record = {"step": run.step, "lr": scheduler.get_last_lr()[0], **totals}
        if accelerator.is_main_process:
            log.append(record)
        bar.update(1)
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", txt=f"{record['text_accuracy']:.2f}", use=f"{record['usage']:.2f}"
        )
        if run.step % args.eval_steps == 0 or run.step == args.max_steps:
            if accelerator.is_main_process:
                metrics = evaluate_stage1(unwrapped, test.head(500))
                if degree_pairs is not None:
                    metrics |= evaluate_degree(unwrapped, tokenizer, degree_pairs)
                log.append({"step": run.step, **{f"eval_{k}": v for k, v in metrics.items()}})
                save_samples(unwrapped, tokenizer, test, output_dir / "samples" / f"step-{run.step}.png")
            accelerator.wait_for_everyone()
        stopping = stop.requested()
        if stopping or run.step % args.checkpointing_steps == 0 or run.step == args.max_steps:
            save_run_checkpoint(
                run, args, output_dir, model, optimizer, scheduler, run_keys=_RUN_KEYS, accelerator=accelerator
            )
        if stopping:
            stop.exit(run.step, output_dir)
    stop.close()
    bar.close()

    def evaluate() -> dict:
        final = evaluate_stage1(unwrapped, test)
        plot_losses(log.read(), ["loss", "image_loss", "text_loss", "quantizer_loss"], output_dir / "losses.png")
        accelerator.print(json.dumps(final))
        return {
            "config": {k: getattr(config, k) for k in _RESULT_CONFIG_KEYS}
            | {"quantizer": config.quantizer_config["type"]},
            "metrics": [{"metric": k, "split": "test", "value": round(v, 4)} for k, v in final.items()],
        }

    description = {"model": "mxqvae", "dataset": f"caption_mnist/{args.dataset_config}"}
    return finish_run(
        accelerator, run, args, output_dir, started=started, saved=[(unwrapped, ""), (tokenizer, "")],
        description=description, evaluate=evaluate,
    )  # fmt: skip


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_mxqvae.py"))

"""Train the MXQ-VAE stage-2 prior (GPT-2 over the joint code sequence) on a trained stage-1 model, and save the
generation pipeline (stage 1 + prior + tokenizer) as one folder.

    python examples/mxqvae/train_mxqvae_prior.py --config examples/mxqvae/configs/prior_quad4.yaml
    python examples/mxqvae/train_mxqvae_prior.py --config ... --resume_from_checkpoint latest
    accelerate launch --config_file examples/accelerate_configs/cpu_2_processes.yaml \\
        examples/mxqvae/train_mxqvae_prior.py --config ...  # two processes (README: "From this CPU to a cluster")

The stage-1 model encodes every training pair once (clean inputs) into its joint codes; each training sequence is
written image-first or text-first at random (a start token of its own), so the pipeline can complete a caption's
codes into an image and an image's codes into a caption.

``--caption_conditioned --base_pipeline <pipeline>`` (text -> image; not in the paper) trains a caption-conditioned
prior instead: each sequence is the caption's token ids, then the pair's codes image-first, and the loss is on the
codes only. Stage 1 and the tokenizer come from the base pipeline, and the saved pipeline is the base one with this
prior as its ``caption_prior``, which ``pipe(caption=...)`` then samples from. ``--caption_conditioned --stage1
<stage 1>`` (no joint prior yet, as for an ablation's text -> image) saves a text -> image pipeline: stage 1, the
tokenizer and this prior only.

Writes into ``--output_dir``: ``checkpoint-<step>/``, ``losses.jsonl``, ``losses.png``, ``samples/step-<k>.png``
(sampled pairs with their captions), the prior (``prior/``), the pipeline folder (``pipeline/``) and
``eval_results.json`` (test negative log-likelihood).
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
from mmquant.data.pairs import CaptionPairs
from mmquant.models.mxqvae import MXQVAEPriorConfig, MXQVAEPriorForCausalLM
from mmquant.pipelines import MXQVAEPipeline
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
    save_run_checkpoint,
    start_or_resume,
)

HERE = Path(__file__).resolve().parent
_RUN_KEYS = RUN_KEYS


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--config", help="YAML file of defaults for any argument below")
    p.add_argument("--stage1", required=False, default=None, help="folder of the trained stage-1 model + tokenizer")
    p.add_argument(
        "--output_dir",
        default="outputs/mxqvae-prior",
        help="where checkpoints, logs, the prior, the pipeline and eval_results.json go",
    )
    p.add_argument("--dataset_config", default="quad4", help="Caption MNIST layout of the training pairs (as stage 1)")
    p.add_argument("--train_examples", type=int, default=50000, help="Caption MNIST training pairs encoded to codes")
    p.add_argument("--test_examples", type=int, default=2000, help="test pairs for the NLL")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the generated pairs (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--n_layer", type=int, default=4, help="prior transformer layers")
    p.add_argument("--n_head", type=int, default=4, help="prior attention heads")
    p.add_argument("--n_embd", type=int, default=128, help="prior width")
    p.add_argument("--dropout", type=float, default=0.1, help="prior dropout")
    p.add_argument("--text_first_ratio", type=float, default=0.5, help="share of sequences written text-first")
    p.add_argument(
        "--caption_conditioned",
        action="store_true",
        help="train a caption-conditioned prior (text -> image; not in the paper) on --base_pipeline's stage 1 (the "
        "saved pipeline is that one plus this prior) or on --stage1 (a text -> image pipeline)",
    )
    p.add_argument(
        "--base_pipeline",
        default=None,
        help="with --caption_conditioned: the trained pipeline (stage 1, prior, tokenizer) that receives this prior",
    )
    p.add_argument(
        "--init_prior",
        default=None,
        help="start from this trained prior's weights (a prior/ folder of an earlier run on the same stage 1) with a "
        "fresh optimizer and learning-rate schedule: a warm restart that continues a finished run; its architecture "
        "replaces --n_layer/--n_head/--n_embd/--dropout",
    )
    p.add_argument("--top_k", type=int, default=10, help="sampling for the sample grids")
    add_training_arguments(p, batch_size=64)
    p.set_defaults(weight_decay=0.01)  # GPT-2-style decay on the prior
    args = load_yaml_defaults(p, argv)
    if args.base_pipeline and not args.caption_conditioned:
        p.error("--base_pipeline goes with --caption_conditioned (the pipeline that receives the prior)")
    if not args.stage1 and not args.base_pipeline:  # with both, stage 1 is the base pipeline's
        p.error("--stage1 (the trained stage-1 folder) is required (or, with --caption_conditioned, --base_pipeline)")
    return args


@torch.no_grad()
def encode_pairs(stage1, pairs: CaptionPairs, batch_size: int = 250) -> torch.Tensor:
    """The joint codes `(N, num_tokens)` of every pair (clean inputs, eval mode)."""
    stage1.eval()
    codes = []
    for start in range(0, len(pairs), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pairs)))
        codes.append(stage1.encode_to_indices(pairs.pixel_values(index), pairs.input_ids[index]))
    return torch.cat(codes)


def to_sequences(prior: MXQVAEPriorForCausalLM, codes: torch.Tensor, text_first: torch.Tensor, captions=None):
    """`[start] + codes` per row, in the order each row's `text_first` flag says; for a caption-conditioned prior
    the caption prefix, then the codes image-first. Also the labels: the sequence, caption prefix masked (-100)."""
    if captions is not None:
        seq = prior.to_sequence(codes, caption_ids=captions)
        labels = seq.clone()
        labels[:, : prior.config.caption_length + 1] = -100  # the caption and the codes' start token are given
        return seq, labels
    image_first = prior.to_sequence(codes, text_first=False)
    text_first_seq = prior.to_sequence(codes, text_first=True)
    seq = torch.where(text_first[:, None], text_first_seq, image_first)
    return seq, seq


@torch.no_grad()
def test_nll(prior, codes: torch.Tensor, captions=None, batch_size: int = 250) -> float:
    """Mean negative log-likelihood per code (nats) of the test codes, image-first order (after their captions, for
    a caption-conditioned prior)."""
    prior.eval()
    total, count = 0.0, 0
    for start in range(0, len(codes), batch_size):
        rows = slice(start, start + batch_size)
        image_first = torch.zeros(len(codes[rows]), dtype=torch.bool)
        seq, labels = to_sequences(prior, codes[rows], image_first, None if captions is None else captions[rows])
        total += float(prior(input_ids=seq, labels=labels).loss) * len(seq)
        count += len(seq)
    prior.train()
    return total / count


STAGE1_COMMAND = (
    "python examples/mxqvae/train_mxqvae.py --config examples/mxqvae/configs/quad4_image_route.yaml "
    "--output_dir outputs/mxqvae-quad4"
)


def _check_stage1(folder: str) -> None:
    """The prior needs a finished stage-1 run (model + tokenizer): say which step is missing, not a loader error."""
    from mmquant.hub.publish import check_model_folder

    try:
        check_model_folder(folder)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(
            f"--stage1 {folder}: no finished stage-1 model there ({err})\nStage 2 (this script) runs after stage 1: "
            f"`{STAGE1_COMMAND}` (the README's MXQ-VAE commands, in order)."
        ) from None
    if not (Path(folder) / "tokenizer.json").is_file():
        raise SystemExit(f"--stage1 {folder}: no tokenizer.json; stage 1 saves it at the end: `{STAGE1_COMMAND}`.")


def _initial_prior(folder: str, config: MXQVAEPriorConfig) -> MXQVAEPriorForCausalLM:
    """`--init_prior`: the trained prior, refused when it was trained on another stage 1's codes (another codebook,
    sequence length or caption conditioning) than the one this run encodes its pairs with."""
    prior = MXQVAEPriorForCausalLM.from_pretrained(folder)
    mine, theirs = config.stage1_config, prior.config.stage1_config
    for key in ("codebook_size", "num_tokens", "max_text_length", "vocab_size"):
        if getattr(mine, key) != getattr(theirs, key):
            raise SystemExit(
                f"--init_prior {folder}: trained on a stage 1 with {key}={getattr(theirs, key)}, this run's stage 1 "
                f"has {key}={getattr(mine, key)}; pass the prior/ folder of a run on the same stage 1."
            )
    if prior.config.caption_vocab_size != config.caption_vocab_size:
        kind = "caption-conditioned" if prior.config.caption_vocab_size else "joint (unconditional)"
        raise SystemExit(
            f"--init_prior {folder}: a {kind} prior; this run trains the other kind (--caption_conditioned)."
        )
    return prior


def main(args) -> dict:
    output_dir = Path(args.output_dir)
    accelerator = make_accelerator(args, "mxqvae-prior")  # seeded: the same initial weights on every process
    base = None
    if args.base_pipeline:
        base = MXQVAEPipeline.from_pretrained(args.base_pipeline)
        stage1, tokenizer = base.stage1.eval(), base.tokenizer
    else:
        _check_stage1(args.stage1)
        stage1 = AutoModel.from_pretrained(args.stage1).eval()
        tokenizer = AutoTokenizer.from_pretrained(args.stage1)
    with accelerator.main_process_first():  # the main process generates (and caches) the pairs, the others read them
        ds = build_dataset(
            "caption_mnist",
            args.dataset_config,
            cache_dir=args.dataset_cache_dir,
            num_examples={"train": args.train_examples, "test": args.test_examples},
        )
    max_length = stage1.config.max_text_length
    train_pairs = CaptionPairs.from_dataset(ds["train"], tokenizer, max_length)
    test_pairs = CaptionPairs.from_dataset(ds["test"], tokenizer, max_length)
    train_codes, test_codes = encode_pairs(stage1, train_pairs), encode_pairs(stage1, test_pairs)
    # the caption-conditioned prior's prefixes (None: the paper's prior)
    train_captions = train_pairs.input_ids if args.caption_conditioned else None
    test_captions = test_pairs.input_ids if args.caption_conditioned else None
    accelerator.print(f"encoded {len(train_codes)} training pairs; codes in use: {train_codes.unique().numel()}")
    if len(train_codes) < args.batch_size:
        raise ValueError(f"--batch_size {args.batch_size} exceeds the {len(train_codes)} training pairs.")

    config = MXQVAEPriorConfig(
        stage1_config=stage1.config.to_dict(),
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        caption_vocab_size=stage1.config.vocab_size if args.caption_conditioned else 0,
    )
    prior = MXQVAEPriorForCausalLM(config) if args.init_prior is None else _initial_prior(args.init_prior, config)
    optimizer = torch.optim.AdamW(prior.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.max_steps, args.learning_rate, args.warmup_ratio)
    prior, optimizer = accelerator.prepare(prior, optimizer)
    unwrapped = accelerator.unwrap_model(prior)

    run = start_or_resume(
        args, output_dir, prior, optimizer, scheduler, run_keys=_RUN_KEYS, code_dir=HERE, accelerator=accelerator
    )
    log = LossLog(output_dir / "losses.jsonl", resume_step=run.step if run.resumed_from else None)
    bar = progress_bar(args.max_steps, initial=run.step, disable=not accelerator.is_local_main_process)
    accumulation = args.gradient_accumulation_steps
    started = time.time()
    prior.train()
    if args.caption_conditioned:  # the base pipeline (or none: text -> image only) with this prior
        joint = base.prior if base is not None else None
        pipe = MXQVAEPipeline(stage1=stage1, prior=joint, tokenizer=tokenizer, caption_prior=unwrapped)
    else:
        pipe = MXQVAEPipeline(stage1=stage1, prior=unwrapped, tokenizer=tokenizer)
    stop = GracefulStop(accelerator)  # Ctrl-C / SIGTERM: save a checkpoint at the end of the step and exit
    while run.step < args.max_steps:
        totals = {}
        for micro in range(accumulation):
            index = process_batch_indices(accelerator, run.step, micro, len(train_codes), args)
            # each process draws its own rows' orders (the one-process run draws the whole batch's)
            text_first = torch.rand(len(index)) < args.text_first_ratio
            captions = None if train_captions is None else train_captions[index]
            seq, labels = to_sequences(unwrapped, train_codes[index], text_first, captions)
            with accelerator.accumulate(prior):
                with accelerator.autocast():
                    loss = prior(input_ids=seq, labels=labels).loss  # a mean over a fixed number of codes per row
                backward_and_step(accelerator, loss, optimizer)
            add_micro_batch(totals, {"loss": float(loss.detach())}, accumulation)
        scheduler.step()
        run.step += 1
        record = mean_over_processes(accelerator, totals)  # the global batch's
        if accelerator.is_main_process:
            log.append({"step": run.step, "lr": scheduler.get_last_lr()[0], **record})
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if run.step % args.eval_steps == 0 or run.step == args.max_steps:
            if accelerator.is_main_process:
                head = None if test_captions is None else test_captions[:500]
                log.append({"step": run.step, "eval_nll": test_nll(unwrapped, test_codes[:500], head)})
                if test_captions is None:
                    out = pipe(num_samples=8, seed=0, top_k=args.top_k)
                else:  # text -> image for the first test caption
                    out = pipe(num_samples=8, seed=0, top_k=args.top_k, caption=test_pairs.captions[0])
                MXQVAEPipeline.save_grid(out, output_dir / "samples" / f"step-{run.step}.png")
                prior.train()
            accelerator.wait_for_everyone()
        stopping = stop.requested()
        if stopping or run.step % args.checkpointing_steps == 0 or run.step == args.max_steps:
            save_run_checkpoint(
                run, args, output_dir, prior, optimizer, scheduler, run_keys=_RUN_KEYS, accelerator=accelerator
            )
        if stopping:
            stop.exit(run.step, output_dir)
    stop.close()
    bar.close()

    def evaluate() -> dict:
        plot_losses(log.read(), ["loss"], output_dir / "losses.png")
        nll = round(test_nll(unwrapped, test_codes, test_captions), 4)
        return {"metrics": [{"metric": "nll_per_code", "split": "test", "value": nll}]}

    model = "mxqvae_caption_prior" if args.caption_conditioned else "mxqvae_prior"
    description = {"model": model, "dataset": f"caption_mnist/{args.dataset_config}"}
    return finish_run(
        accelerator, run, args, output_dir, started=started, saved=[(unwrapped, "prior"), (pipe, "pipeline")],
        description=description, evaluate=evaluate,
    )  # fmt: skip


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_mxqvae_prior.py"))

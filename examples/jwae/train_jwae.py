"""Train jWAE (joint Wasserstein autoencoders, Mahajan et al. 2019) or its VSE++ baseline with accelerate.

    python examples/jwae/train_jwae.py --config examples/jwae/configs/jwae_quad2.yaml       # jWAE-MH, Caption MNIST
    python examples/jwae/train_jwae.py --config examples/jwae/configs/vsepp_quad2.yaml      # the VSE++ baseline
    python examples/jwae/train_jwae.py --config ... --resume_from_checkpoint latest
    accelerate launch --config_file examples/accelerate_configs/cpu_2_processes.yaml \\
        examples/jwae/train_jwae.py --config ...  # two processes (README: "From this CPU to a cluster")
    python examples/jwae/train_jwae.py --config examples/jwae/configs/jwae_quad2_caption_head.yaml \\
        --init_from outputs/jwae-quad2 --output_dir outputs/jwae-quad2-head     # phase 2: the captioning head only
    python examples/jwae/train_jwae.py --config examples/jwae/configs/jwae_coco_precomp.yaml \\
        --data_dir /data/coco --image_features /data/coco/features.safetensors       # the paper's COCO protocol

``--phase joint`` (the paper's training) alternates, at each step, the two players of the adversarial prior
matching: first the encoders and decoders take a step on L_jWAE(-MH) with the latent critic frozen (its parameters
are detached inside the loss), then the critic takes a step telling N(0, I) samples from this batch's (detached) image
and caption latents. Writes into ``--output_dir``: ``args.json``, ``checkpoint-<step>/`` (model, critic, both
optimizers), ``losses.jsonl``, ``losses.png``, ``latents/step-<k>.png`` (2-D PCA of test latents against prior
samples), the final model and tokenizer (``save_pretrained``) and ``eval_results.json`` (Recall@1/5/10 both ways on
the test split).

``--phase caption_head`` (not in the paper) continues a finished joint run (``--init_from``) and trains the caption
decoder alone on its captioning-head loss, the caption read back from the detached image latent: every encoder is
frozen, so the embeddings and retrieval figures stay those of the joint run. Within the 1,500 joint steps the decoder
is still learning when the run ends (it names the first digit and repeats it as the second); the phase gives it the
steps it needs without changing what the comparison with VSE++ measures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.losses.divergences import critic_loss, gaussian_frechet_distance
from mmquant.metrics.retrieval import cross_modal_retrieval
from mmquant.models.jwae import JWAEConfig, JWAEModel
from mmquant.models.registry import get_config
from mmquant.modules.grid_features import load_digit_cnn
from mmquant.training import (
    RUN_KEYS,
    GracefulStop,
    LossLog,
    add_hard_batch_argument,
    add_micro_batch,
    add_training_arguments,
    backward_and_step,
    finish_run,
    hard_batch_regroup,
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

try:  # run as a script (examples/jwae on sys.path) or imported by the tests
    from jwae_data import add_data_arguments, load_split, make_tokenizer
except ImportError:  # pragma: no cover
    from .jwae_data import add_data_arguments, load_split, make_tokenizer

HERE = Path(__file__).resolve().parent
_RUN_KEYS = (*RUN_KEYS, "phase", "hard_batch_ratio")


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--config", help="YAML file of defaults for any argument below")
    p.add_argument(
        "--output_dir",
        default="outputs/jwae",
        help="where checkpoints, logs, plots, the final model and eval_results.json go",
    )
    add_data_arguments(p)
    p.add_argument(
        "--phase",
        default="joint",
        choices=["joint", "caption_head"],
        help="joint: L_jWAE(-MH) from scratch; caption_head: the decoder alone on a finished run (--init_from)",
    )
    p.add_argument("--init_from", default=None, help="the joint run's output folder (--phase caption_head)")
    p.add_argument("--model_size", default="jwae-caption-mnist", help="a jwae/vsepp size of mmquant.list_models()")
    p.add_argument("--model_config", type=json.loads, default={}, help="JWAEConfig fields as JSON (override)")
    p.add_argument(
        "--grid_features",
        default=None,
        help="folder written by pretrain_grid_features.py: the frozen CNN of image_input='grid_features' sizes",
    )
    p.add_argument("--critic_learning_rate", type=float, default=5e-5, help="the reference's critic Adam rate")
    p.add_argument("--max_grad_norm", type=float, default=2.0, help="the reference's gradient clipping")
    p.add_argument(
        "--sum_hinge_warmup_steps",
        type=int,
        default=500,
        help="steps of sum-of-hinges ranking loss before the hardest negatives (VSE-infinity's warm-up; from scratch "
        "the max-hinge loss alone collapses every embedding to one point)",
    )
    add_hard_batch_argument(p, "the ranking loss")
    p.add_argument("--eval_images", type=int, default=1000, help="test images ranked at each evaluation")
    add_training_arguments(p, batch_size=128, lr_schedule="cosine", max_steps=3000)
    p.set_defaults(learning_rate=2e-4)
    args = load_yaml_defaults(p, argv)
    if args.batch_size < 2 or args.max_steps < 1:
        p.error("--batch_size must be >= 2 (the ranking loss needs negatives) and --max_steps >= 1")
    if args.phase == "caption_head" and not args.init_from:
        p.error("--phase caption_head continues a joint run: pass its output folder as --init_from")
    if args.phase == "joint" and args.init_from:
        p.error("--init_from: only --phase caption_head continues a finished run (a joint run starts from scratch)")
    if not isinstance(get_config(args.model_size), JWAEConfig):
        p.error(f"--model_size {args.model_size!r} is not a jWAE size (jwae-caption-mnist, vsepp-caption-mnist, ...)")
    return args


def model_config(args, tokenizer) -> JWAEConfig:
    """The registry size, --model_config overrides, and the tokenizer's vocabulary and special ids."""
    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        unk_token_id=tokenizer.unk_token_id,
    )
    return get_config(args.model_size, **args.model_config, **ids)


def build_model(args) -> tuple[JWAEModel, object]:
    """A fresh model of ``--model_size`` (``--phase joint``) or the finished joint run of ``--init_from``
    (``--phase caption_head``), with its tokenizer."""
    if args.phase == "caption_head":
        from transformers import AutoTokenizer

        if not (Path(args.init_from) / "config.json").is_file():
            from mmquant.hub.publish import unfinished_run_hint

            raise FileNotFoundError(
                f"--init_from {args.init_from}: no finished joint run there; {unfinished_run_hint(args.init_from)} "
                "The phases run in order (README, jWAE)."
            )
        model = JWAEModel.from_pretrained(args.init_from)
        if model.config.lambda_image_caption <= 0:
            raise ValueError(
                f"--init_from {args.init_from}: this model has no captioning head (lambda_image_caption is 0)."
            )
        return model, AutoTokenizer.from_pretrained(args.init_from)
    max_length = args.model_config.get("max_text_length", get_config(args.model_size).max_text_length)
    tokenizer = make_tokenizer(args, max_length)
    model = JWAEModel(model_config(args, tokenizer))
    load_frozen_cnn(model, args.grid_features, args.model_size)
    return model, tokenizer


def load_frozen_cnn(model: JWAEModel, folder: str | None, model_size: str = "") -> None:
    """Load the pretrained CNN of a ``"grid_features"`` model from ``--grid_features`` (it stays frozen)."""
    c = model.config
    if c.image_input != "grid_features":
        if folder is not None:
            raise ValueError(f"--grid_features {folder}: this model's image_input is {c.image_input!r}, not grid.")
        return
    if folder is None:
        raise ValueError(
            f"--model_size {model_size} reads grid features: pass --grid_features <folder>, made by "
            "`python examples/jwae/pretrain_grid_features.py --output_dir <folder>`."
        )
    load_digit_cnn(model.grid_features.cnn, folder, c.image_size // 2)


@torch.no_grad()
def embed(model: JWAEModel, pairs, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """Image latents ``(N, D)`` and caption latents ``(T, D)`` of a gallery."""
    was_training = model.training
    model.eval()
    images = [
        model.get_image_features(**pairs.image_inputs(torch.arange(s, min(s + batch_size, pairs.num_images))))
        for s in range(0, pairs.num_images, batch_size)
    ]
    texts = [model.get_text_features(pairs.input_ids[s : s + batch_size]) for s in range(0, len(pairs), batch_size)]
    model.train(was_training)
    return torch.cat(images).float(), torch.cat(texts).float()


def evaluate_retrieval(model: JWAEModel, pairs) -> dict:
    """Recall@1/5/10 and median rank both ways, plus how far each modality's latents are from the prior."""
    image_embeds, text_embeds = embed(model, pairs)
    scores = cross_modal_retrieval(image_embeds, text_embeds, pairs.text_to_image)
    scores["image_prior_distance"] = float(gaussian_frechet_distance(image_embeds))
    scores["text_prior_distance"] = float(gaussian_frechet_distance(text_embeds))
    return scores


def save_latent_plot(model: JWAEModel, pairs, path: Path, title: str) -> Path:
    """2-D PCA (fitted on prior samples and both modalities) of test latents against N(0, I) samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image_embeds, text_embeds = embed(model, pairs.head(min(500, pairs.num_images)))
    prior = torch.randn(len(image_embeds), image_embeds.shape[1], generator=torch.Generator().manual_seed(0))
    everything = torch.cat([prior, image_embeds, text_embeds])
    _, _, v = torch.pca_lowrank(everything, q=2, center=True)
    mean = everything.mean(0)
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, z, color in (
        ("prior N(0, I)", prior, "0.7"),
        ("images", image_embeds, "C0"),
        ("captions", text_embeds, "C3"),
    ):
        xy = (z - mean) @ v  # (n, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, label=name, color=color)
    ax.set_title(title)
    ax.legend(markerscale=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(args) -> dict:
    output_dir = Path(args.output_dir)
    accelerator = make_accelerator(args, "jwae")  # seeded: the same initial weights on every process
    model, tokenizer = build_model(args)
    max_length = model.config.max_text_length
    image_size = model.config.image_size if model.config.image_input != "features" else None
    with accelerator.main_process_first():  # the main process generates (and caches) the pairs, the others read them
        train = load_split(args, "train", tokenizer, max_length, image_size)
        test = load_split(args, "test", tokenizer, max_length, image_size)
    if model.config.image_input == "grid_features":  # the frozen CNN runs once per image, not at every step
        train, test = (pairs.with_image_features(model.grid_features) for pairs in (train, test))
    if len(train) < args.batch_size:
        raise ValueError(f"--batch_size {args.batch_size} exceeds the {len(train)} training pairs.")
    head_only = args.phase == "caption_head"
    critic = model.make_critic() if model.config.uses_prior and not head_only else None
    if head_only:  # every encoder (and the image decoder) frozen: the embeddings stay the joint run's
        model.requires_grad_(False)
        model.text_decoder.requires_grad_(True)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.max_steps, args.learning_rate, args.warmup_ratio)
    extras = {}
    if critic is not None:
        critic_optimizer = torch.optim.Adam(critic.parameters(), lr=args.critic_learning_rate, betas=(0.5, 0.999))
        model, optimizer, critic, critic_optimizer = accelerator.prepare(model, optimizer, critic, critic_optimizer)
        extras = {"critic": (critic, critic_optimizer)}
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    plain_critic = accelerator.unwrap_model(critic) if critic is not None else None

    run = start_or_resume(
        args,
        output_dir,
        model,
        optimizer,
        scheduler,
        run_keys=_RUN_KEYS,
        code_dir=HERE,
        accelerator=accelerator,
        extras=extras,
    )
    log = LossLog(output_dir / "losses.jsonl", resume_step=run.step if run.resumed_from else None)
    bar = progress_bar(args.max_steps, initial=run.step, disable=not accelerator.is_local_main_process)
    keys = (
        "loss",
        "image_reconstruction_loss",
        "text_reconstruction_loss",
        "image_prior_loss",
        "text_prior_loss",
        "ranking_loss",
        "image_caption_loss",
    )
    accumulation = args.gradient_accumulation_steps
    trained_modules = (model,) if critic is None else (model, critic)
    regroup = hard_batch_regroup(args.hard_batch_ratio, args.dataset, train.captions, args.seed)
    started = time.time()
    model.train()
    stop = GracefulStop(accelerator)  # Ctrl-C / SIGTERM: save a checkpoint at the end of the step and exit
    while run.step < args.max_steps:
        totals = {}
        for micro in range(accumulation):
            index = process_batch_indices(accelerator, run.step, micro, len(train), args, regroup)
            images = train.image_inputs(train.text_to_image[index])
            with accelerator.accumulate(*trained_modules):
                # 1. encoders and decoders: L_jWAE(-MH), the critic's parameters detached inside the prior terms
                with accelerator.autocast():
                    warm = run.step < args.sum_hinge_warmup_steps
                    out = model(
                        **images,
                        input_ids=train.input_ids[index],
                        critic=plain_critic,
                        hardest_negatives=False if warm else None,
                    )
                if head_only:  # the captioning head's term alone (the other terms are reported, not trained)
                    out.loss = out.image_caption_loss
                backward_and_step(accelerator, out.loss, optimizer, trained, args.max_grad_norm)
                record = {k: float(getattr(out, k).detach()) for k in keys if getattr(out, k) is not None}
                # 2. the critic: prior samples (each process draws its own) against this batch's latents (detached)
                if critic is not None:
                    latents = torch.cat([out.image_embeds, out.text_embeds]).detach().float()
                    with accelerator.autocast():
                        loss_c = critic_loss(critic, latents, torch.randn_like(latents))
                    backward_and_step(accelerator, loss_c, critic_optimizer)
                    record["critic_loss"] = float(loss_c.detach())
            add_micro_batch(totals, record, accumulation)
        scheduler.step()
        record = totals
        run.step += 1
        record = mean_over_processes(accelerator, record)
        record = {"step": run.step, "lr": scheduler.get_last_lr()[0], **record}
        if accelerator.is_main_process:
            log.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", rank=f"{record.get('ranking_loss', 0):.3f}")
        if run.step % args.eval_steps == 0 or run.step == args.max_steps:
            if accelerator.is_main_process:
                metrics = evaluate_retrieval(unwrapped, test.head(args.eval_images))
                log.append({"step": run.step, **{f"eval_{k}": v for k, v in metrics.items()}})
                save_latent_plot(
                    unwrapped, test, output_dir / "latents" / f"step-{run.step}.png", f"test latents, step {run.step}"
                )
            accelerator.wait_for_everyone()
        stopping = stop.requested()
        if stopping or run.step % args.checkpointing_steps == 0 or run.step == args.max_steps:
            save_run_checkpoint(
                run,
                args,
                output_dir,
                model,
                optimizer,
                scheduler,
                run_keys=_RUN_KEYS,
                accelerator=accelerator,
                extras=extras,
            )
        if stopping:
            stop.exit(run.step, output_dir)
    stop.close()
    bar.close()

    def evaluate() -> dict:
        final = evaluate_retrieval(unwrapped, test.head(args.eval_images))
        logged = log.read()  # the whole run's records (a resumed finished run trains no step here)
        names = [k for k in (*keys, "critic_loss") if any(k in r for r in logged)]
        plot_losses(logged, names, output_dir / "losses.png")
        accelerator.print(json.dumps(final))
        return {"metrics": [{"metric": k, "split": "test", "value": round(v, 4)} for k, v in final.items()]}

    dataset = f"{args.dataset}/{args.dataset_config or 'quad2'}" if args.dataset == "caption_mnist" else args.dataset
    description = {
        "model": "jwae" if unwrapped.config.uses_prior else "vsepp",
        "phase": args.phase,
        "dataset": dataset,
        "test_images": min(args.eval_images, test.num_images),
    }
    return finish_run(
        accelerator, run, args, output_dir, started=started, saved=[(unwrapped, ""), (tokenizer, "")],
        description=description, evaluate=evaluate,
    )  # fmt: skip


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_jwae.py"))

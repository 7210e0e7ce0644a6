"""Train LAViTeR (Shaikh et al. 2021) in the paper's three phases with accelerate, on Caption MNIST.

    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase1_vta.yaml         # VTA
    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase2_generators.yaml  # TIM + ITM
    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase3_joint.yaml       # LAViTeR
    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase3_vta_only.yaml    # ablations:
    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase3_img2txt.yaml     #   Table 2
    python examples/laviter/train_laviter.py --config examples/laviter/configs/phase3_txt2img.yaml
    python examples/laviter/train_laviter.py --config ... --resume_from_checkpoint latest
    accelerate launch --config_file examples/accelerate_configs/cpu_2_processes.yaml \\
        examples/laviter/train_laviter.py --config ...  # two processes (README: "From this CPU to a cluster")

Phase ``vta`` trains the image and text encoders on L_VTA (eq. 8). Phase ``generators`` starts from the VTA output
(``--init_from``) and trains the text-to-image generator (L_TIM, eq. 11, against discriminators trained
alternately on eq. 10) and the captioner (L_ITM, eq. 14) on the frozen encoders' features. Phase ``joint`` starts
from that and trains everything on eq. 16 with the λ of ``--model_config`` (the captioner's first layers frozen;
``--no-train_image_backbone`` freezes the image CNN too, the paper's LAViTeR-(F)). Each step: the model's step on
its phase objective, then (when the generator trains) the discriminators' step on detached generated images.

Writes into ``--output_dir``: ``args.json``, ``checkpoint-<step>/`` (model, discriminators, both optimizers),
``losses.jsonl``, ``losses.png``, ``samples/step-<k>-generated.png`` (images generated from test captions) and
``samples/step-<k>-captions.png`` (test images with their generated captions), the final model and tokenizer, and
``eval_results.json``: R-precision of generated images (top-1 and top-3 among 100 captions, by the model's own
encoders), the same for real images, AIMCoS with the caption's digit and colour words as attributes; on Caption MNIST
quadrant layouts also the judge's reading of the generated images (``judge_object_accuracy``, ``judge_pair_accuracy``,
``judge_r_precision@k``: a reader the training never sees; ``judge_place``, ``judge_digit``, ``judge_color`` and
``judge_digit_from_other`` / ``judge_color_from_other``, the attributes one by one, the last two counting a digit or
colour drawn at the place of another object of the caption), and the captioner's object, pair and teacher-forcing
accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mmquant.arguments import make_parser
from mmquant.data.caption_grammar import CENTER, parse_caption, place_labels
from mmquant.data.caption_mnist import DEFAULT_COLORS
from mmquant.data.color_words import find_color_words
from mmquant.data.pairs import CaptionPairs, load_caption_mnist_pairs, tokenize_captions
from mmquant.metrics.alignment import aimcos, r_precision
from mmquant.metrics.caption_objects import caption_accuracy
from mmquant.models.laviter import PHASES, LaviterConfig, LaviterModel, LaviterTextConfig, LaviterVisionConfig
from mmquant.models.registry import MODEL_SIZES, get_config
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
    repo_relative,
    save_captioned_grid,
    save_run_checkpoint,
    start_or_resume,
    sync_batch_norm,
)

HERE = Path(__file__).resolve().parent
# local folders read by the datasets issue's builders: every caption of an image is a training pair
FOLDER_DATASETS = ("cub200_captions", "flowers102_captions", "coco_captions")
# what phase 2 (which trains the generator and captioner from scratch) may choose with --init_from
GENERATOR_FIELDS = {
    "use_tim", "use_itm", "noise_dim", "condition_dim", "generator_channels", "num_generator_stages",
    "generator_attention_positions", "generator_first_stage_attention", "generator_word_context",
    "generator_word_rnn",
    "discriminator_channels", "discriminator_place_words", "discriminator_swapped_halves",
    "image_match_exchanged_quadrants", "discriminator_word_rnn", "discriminator_exchanged_quadrants",
    "place_label_classes", "place_classifier",
    "captioner_num_layers", "captioner_num_heads", "captioner_frozen_layers",
}  # fmt: skip
_RUN_KEYS = (*RUN_KEYS, "phase", "hard_batch_ratio")
_LOSSES = (
    "loss",
    "vta_loss",
    "tim_loss",
    "itm_loss",
    "fake_image_loss",
    "fake_text_loss",
    "generator_adversarial_loss",
    "kl_loss",
    "redescription_loss",
    "image_match_loss",
    "pixel_loss",
    "place_label_loss",
    "place_classifier_loss",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--config", help="YAML file of defaults for any argument below")
    p.add_argument(
        "--output_dir",
        default="outputs/laviter",
        help="where checkpoints, logs, samples, the final model and eval_results.json go",
    )
    p.add_argument(
        "--phase",
        default="vta",
        choices=PHASES,
        help="training phase: vta (1), generators (2) or joint (3); 2 and 3 need --init_from",
    )
    p.add_argument("--init_from", default=None, help="the previous phase's output folder (model and tokenizer)")
    p.add_argument(
        "--dataset",
        default="caption_mnist",
        choices=("caption_mnist", *FOLDER_DATASETS),
        help="caption_mnist (generated offline) or a local-folder builder with --data_dir",
    )
    p.add_argument(
        "--dataset_config", default=None, help="Caption MNIST: single, quad1 ... quad4 (default quad2); COCO: karpathy"
    )
    p.add_argument("--data_dir", default=None, help="the local CUB / Flowers / COCO folder (see its dataset card)")
    p.add_argument("--train_examples", type=int, default=20000, help="Caption MNIST training pairs to generate")
    p.add_argument("--test_examples", type=int, default=1000, help="test pairs to generate and score")
    p.add_argument(
        "--dataset_cache_dir",
        default=None,
        help="datasets cache of the prepared data (default: ~/.cache/huggingface/datasets)",
    )
    p.add_argument("--model_size", default="laviter-caption-mnist", help="a laviter size of mmquant.list_models()")
    p.add_argument(
        "--model_config",
        type=json.loads,
        default={},
        help="LaviterConfig fields as JSON; with --init_from only the loss weights (lambda_*, gamma*) may change",
    )
    p.add_argument(
        "--grid_features",
        default=None,
        help="folder written by examples/jwae/pretrain_grid_features.py: the frozen digit CNN of a fresh model with "
        "vision backbone digit_grid (e.g. --model_size laviter-caption-mnist-grid)",
    )
    p.add_argument(
        "--train_image_backbone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the VTA image backbone (off: frozen, as with a pretrained InceptionV3)",
    )
    p.add_argument("--discriminator_learning_rate", type=float, default=2e-4, help="AttnGAN's Adam rate for D")
    p.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping norm (0: none)")
    p.add_argument("--adam_beta1", type=float, default=0.9, help="the model's Adam beta1 (AttnGAN's generators: 0.5)")
    add_hard_batch_argument(p, "the matching losses")
    p.add_argument("--eval_images", type=int, default=1000, help="test pairs scored at each evaluation")
    p.add_argument("--r_precision_candidates", type=int, default=100, help="captions ranked per image (AttnGAN)")
    add_training_arguments(p, batch_size=32, lr_schedule="constant", max_steps=1000)
    p.set_defaults(learning_rate=2e-4)  # section 4.3
    args = load_yaml_defaults(p, argv)
    if args.batch_size < 2 or args.max_steps < 1:
        p.error("--batch_size must be >= 2 (the matching losses need negatives) and --max_steps >= 1")
    if args.phase != "vta" and not args.init_from:
        p.error(f"--phase {args.phase} continues a previous phase: pass its output folder as --init_from")
    if not isinstance(get_config(args.model_size), LaviterConfig):
        p.error(f"--model_size {args.model_size!r} is not a LAViTeR size (laviter-caption-mnist, laviter-test)")
    return args


def load_pairs(args, max_length: int, image_size: int, tokenizer=None):
    """``(tokenizer, {"train": CaptionPairs, "test": CaptionPairs})`` of ``args.dataset``: Caption MNIST generated
    offline, or a local folder through its builder (one training pair per caption, the first caption of each test
    image); the tokenizer is trained on the training captions unless given."""
    sizes = {"train": args.train_examples, "test": args.test_examples}
    if args.dataset == "caption_mnist":
        config = args.dataset_config or "quad2"
        return load_caption_mnist_pairs(config, sizes, max_length, args.dataset_cache_dir, tokenizer)
    from mmquant.data.builders import build_dataset
    from mmquant.data.retrieval_pairs import RetrievalPairs
    from mmquant.data.tokenizer import train_caption_tokenizer

    if args.data_dir is None:
        raise ValueError(f"--dataset {args.dataset} reads a local folder: pass --data_dir (see its dataset card).")
    ds = build_dataset(
        args.dataset, args.dataset_config, data_dir=Path(args.data_dir), cache_dir=args.dataset_cache_dir
    )
    if tokenizer is None:
        captions = [c for row in ds["train"]["captions"] for c in row]
        tokenizer = train_caption_tokenizer(captions, model_max_length=max_length, min_frequency=4)  # VSE++'s
    pairs = {}
    for split, n in sizes.items():
        rows = ds[split].select(range(min(n, len(ds[split])))) if n else ds[split]
        gallery = RetrievalPairs.from_dataset(rows, tokenizer, max_length, image_size=image_size)
        keep = torch.arange(len(gallery)) if split == "train" else first_caption_of_each_image(gallery.text_to_image)
        images = gallery.images[gallery.text_to_image[keep]]
        pairs[split] = CaptionPairs(images, gallery.input_ids[keep], [gallery.captions[i] for i in keep.tolist()], {})
    return tokenizer, pairs


def first_caption_of_each_image(text_to_image: torch.Tensor) -> torch.Tensor:
    """Indices of the first caption of every image."""
    first = torch.ones_like(text_to_image, dtype=torch.bool)
    first[1:] = text_to_image[1:] != text_to_image[:-1]
    return first.nonzero().flatten()


def load_model_and_data(args):
    """The model (fresh, or the previous phase's with new loss weights), its tokenizer and the train/test pairs."""
    if args.init_from:
        from transformers import AutoTokenizer

        changed = {k for k in args.model_config if not k.startswith(("lambda_", "gamma"))}
        allowed = GENERATOR_FIELDS if args.phase == "generators" else set()
        if changed - allowed:
            raise ValueError(
                f"--model_config {sorted(changed - allowed)}: with --init_from only lambda_* and gamma* may change"
                + (f" (and, in phase generators, {sorted(GENERATOR_FIELDS)})." if args.phase != "generators" else ".")
            )
        if not (Path(args.init_from) / "config.json").is_file():
            from mmquant.hub.publish import unfinished_run_hint

            raise FileNotFoundError(
                f"--init_from {args.init_from}: no finished model of the previous phase there; "
                f"{unfinished_run_hint(args.init_from)} The phases run in order (README, LAViTeR)."
            )
        if args.grid_features is not None:
            raise ValueError(
                f"--grid_features {args.grid_features}: with --init_from the frozen CNN comes with the previous "
                "phase's model; drop --grid_features."
            )
        tokenizer = AutoTokenizer.from_pretrained(args.init_from)
        config = LaviterConfig.from_pretrained(args.init_from)
        config = LaviterConfig(**{**config.to_dict(), **args.model_config})  # checked as a new configuration
        if changed:  # phase 2 with another generator or captioner: fresh ones on the previous phase's encoders
            from safetensors.torch import load_file

            model = LaviterModel(config)
            weights = load_file(Path(args.init_from) / "model.safetensors")
            encoders = {k: v for k, v in weights.items() if k.startswith(("image_encoder.", "text_encoder."))}
            missing = model.load_state_dict(encoders, strict=False).missing_keys
            if any(k.startswith(("image_encoder.", "text_encoder.")) for k in missing):
                raise ValueError(f"--init_from {args.init_from}: its encoders do not match the configuration.")
        else:
            model = LaviterModel.from_pretrained(args.init_from, config=config)
        size = model.config.vision_config.image_size
        _, pairs = load_pairs(args, model.config.text_config.max_length, size, tokenizer)
        return model, tokenizer, pairs["train"].resized(size), pairs["test"].resized(size)
    # the size's text settings, then --model_config's, then the tokenizer's vocabulary and special ids
    text = {**MODEL_SIZES[args.model_size].kwargs.get("text_config", {}), **args.model_config.get("text_config", {})}
    max_length = text.get("max_length", LaviterTextConfig().max_length)
    vision = {
        **MODEL_SIZES[args.model_size].kwargs.get("vision_config", {}),
        **args.model_config.get("vision_config", {}),
    }
    size = LaviterVisionConfig(**vision).image_size  # e.g. Caption MNIST's 64x64 images, area-resized to it
    tokenizer, pairs = load_pairs(args, max_length, size)
    text.update(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = get_config(args.model_size, **{**args.model_config, "text_config": text})
    model = LaviterModel(config)
    load_frozen_backbone(model, args.grid_features, args.model_size)
    return model, tokenizer, pairs["train"].resized(size), pairs["test"].resized(size)


def load_frozen_backbone(model: LaviterModel, folder: str | None, model_size: str) -> None:
    """Load the pretrained digit CNN of a fresh ``"digit_grid"`` model from ``--grid_features`` (it stays frozen)."""
    v = model.config.vision_config
    if v.backbone != "digit_grid":
        if folder is not None:
            raise ValueError(
                f"--grid_features {folder}: this model's vision backbone is {v.backbone!r}, not digit_grid."
            )
        return
    if folder is None:
        raise ValueError(
            f"--model_size {model_size} reads a frozen digit CNN: pass --grid_features <folder>, made by "
            "`python examples/jwae/pretrain_grid_features.py --output_dir <folder>`."
        )
    load_digit_cnn(model.image_encoder.grid.cnn, folder, v.image_size // 2)


def caption_attributes(captions: list[str], dataset: str) -> list[list[str]]:
    """AIMCoS's attributes of each caption: on Caption MNIST its digit and colour words, elsewhere its colour words
    (the closest the caption builders come to CUB's attribute annotations)."""
    if dataset != "caption_mnist":
        return [sorted({w.lower() for _, _, w in find_color_words(c)}) for c in captions]
    out = []
    for caption in captions:
        words = []
        for obj in parse_caption(caption, DEFAULT_COLORS):
            words += [str(obj.digit), obj.color]
        out.append(words)
    return out


def quadrant_positions(captions: list[str]) -> list[set[str]]:
    """The positions each Caption MNIST caption describes (``"center"`` for the single layout)."""
    return [{obj.position for obj in parse_caption(c, DEFAULT_COLORS)} for c in captions]


@torch.no_grad()
def evaluate_alignment(
    model: LaviterModel, tokenizer, pairs: CaptionPairs, candidates: int, dataset: str = "caption_mnist", batch=100
):
    """R-precision of generated and of real images, AIMCoS (over the images with an attribute), and on Caption
    MNIST the captioner's object accuracy, on ``pairs``."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(0)
    images, texts, fakes, generated, captions = [], [], [], [], []
    forced = [0, 0]  # next words the captioner gets right with the true words before them, of all words
    for s in range(0, len(pairs), batch):
        ids = pairs.input_ids[s : s + batch]
        pixels = pairs.pixel_values(slice(s, s + batch))
        regions, global_features = model.encode_image(pixels)  # (B, R, D), (B, D): encoded once for all below
        images.append(global_features)
        texts.append(model.get_text_features(ids))
        if hasattr(model, "generator"):
            generated.append(model.generate_images(ids, generator=g))
            fakes.append(model.get_image_features(generated[-1]))
        if hasattr(model, "captioner"):
            captions += tokenizer.batch_decode(model.captioner.generate(regions), skip_special_tokens=True)
            mask = (ids != tokenizer.pad_token_id).long()
            predicted = model.captioner(regions, ids, mask).argmax(-1)  # teacher forcing: (B, T - 1)
            target = ids[:, 1 : 1 + predicted.shape[1]]
            scored = target != tokenizer.pad_token_id
            forced[0] += int((predicted == target)[scored].sum())
            forced[1] += int(scored.sum())
    images, texts = torch.cat(images).float(), torch.cat(texts).float()
    k = min(candidates, len(pairs))
    top = tuple(t for t in (1, 3) if t <= k)  # the paper's top-1 and top-3
    metrics = {f"real_{n}": v for n, v in r_precision(images, texts, num_candidates=k, top_k=top).items()}
    if fakes:
        metrics.update(r_precision(torch.cat(fakes).float(), texts, num_candidates=k, top_k=top))
    words = caption_attributes(pairs.captions, dataset)
    vocabulary = sorted({w for row in words for w in row})
    has = torch.tensor([bool(row) for row in words])
    if vocabulary:
        attribute_ids = tokenize_captions(tokenizer, vocabulary, model.config.text_config.max_length)
        index = {w: i for i, w in enumerate(vocabulary)}
        attributes = model.get_text_features(attribute_ids).float()
        metrics["aimcos"] = aimcos(images[has], attributes, [[index[w] for w in row] for row in words if row])
    if dataset == "caption_mnist" and generated and all(CENTER not in c for c in quadrant_positions(pairs.captions)):
        # the judge, which the training never sees, reads the generated quadrant canvases
        from mmquant.metrics.judged import judged_attributes, judged_generation

        judged = judged_generation(torch.cat(generated), pairs.captions, None, num_candidates=k)
        metrics.update({f"judge_{n}" if not n.startswith("judge_") else n: v for n, v in judged.items()})
        # attribute by attribute: where an object's digit or colour is another object's, it is bound to the wrong place
        attributes = judged_attributes(torch.cat(generated), pairs.captions)
        metrics.update({f"judge_{n}": v for n, v in attributes.items()})
    if captions and dataset == "caption_mnist":
        accuracy = caption_accuracy(captions, pairs.captions)
        metrics["caption_object_accuracy"], metrics["caption_pair_accuracy"] = accuracy
    if forced[1]:
        metrics["caption_teacher_forcing_accuracy"] = forced[0] / forced[1]
    model.train(was_training)
    return metrics, captions


def save_samples(model: LaviterModel, tokenizer, pairs: CaptionPairs, output_dir: Path, step: int) -> None:
    """Images generated from the first 8 test captions, and the first 8 test images with their generated captions."""
    head = pairs.head(8)
    was_training = model.training
    model.eval()
    if hasattr(model, "generator"):
        fake = model.generate_images(head.input_ids, generator=torch.Generator().manual_seed(0))
        save_captioned_grid(fake, head.captions, output_dir / "samples" / f"step-{step}-generated.png")
    if hasattr(model, "captioner"):
        text = tokenizer.batch_decode(
            model.generate_captions(head.pixel_values(slice(None))), skip_special_tokens=True
        )
        save_captioned_grid(head.pixel_values(slice(None)), text, output_dir / "samples" / f"step-{step}-captions.png")
    model.train(was_training)


def main(args) -> dict:
    output_dir = Path(args.output_dir)
    accelerator = make_accelerator(args, "laviter")  # seeded: the same initial weights on every process
    with accelerator.main_process_first():  # the main process prepares (and caches) the data, the others read it
        model, tokenizer, train, test = load_model_and_data(args)
    if len(train) < args.batch_size:
        raise ValueError(f"--batch_size {args.batch_size} exceeds the {len(train)} training pairs.")
    model.set_phase(args.phase, args.train_image_backbone)
    c = model.config
    adversarial = hasattr(model, "generator") and (args.phase == "generators" or c.lambda_tim > 0)

    trainable = [p for p in model.parameters() if p.requires_grad]
    betas = (args.adam_beta1, 0.999)
    optimizer = torch.optim.Adam(trainable, lr=args.learning_rate, betas=betas, weight_decay=args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.max_steps, args.learning_rate, args.warmup_ratio)
    extras = {}
    model = sync_batch_norm(accelerator, model)  # global-batch BatchNorm statistics on several GPUs
    if adversarial:
        discriminator = sync_batch_norm(accelerator, model.make_discriminator())
        d_optimizer = torch.optim.Adam(
            discriminator.parameters(), lr=args.discriminator_learning_rate, betas=(0.5, 0.999)
        )
        model, optimizer, discriminator, d_optimizer = accelerator.prepare(
            model, optimizer, discriminator, d_optimizer
        )
        extras = {"discriminator": (discriminator, d_optimizer)}
        plain_discriminator = accelerator.unwrap_model(discriminator)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
        plain_discriminator = None
    unwrapped = accelerator.unwrap_model(model)

    run = start_or_resume(
        args, output_dir, model, optimizer, scheduler, run_keys=_RUN_KEYS, code_dir=HERE, accelerator=accelerator,
        extras=extras,
    )  # fmt: skip
    log = LossLog(output_dir / "losses.jsonl", resume_step=run.step if run.resumed_from else None)
    bar = progress_bar(args.max_steps, initial=run.step, disable=not accelerator.is_local_main_process)
    accumulation = args.gradient_accumulation_steps
    regroup = hard_batch_regroup(args.hard_batch_ratio, args.dataset, train.captions, args.seed)
    trained_modules = (model,) if plain_discriminator is None else (model, discriminator)
    # the auxiliary place classifier's targets (place_label_classes): what each caption puts in each quadrant
    labels = None
    if adversarial and c.place_label_classes:
        if args.dataset != "caption_mnist":
            raise ValueError(f"place_label_classes: the place labels are read from Caption MNIST captions, not from "
                             f"--dataset {args.dataset}; leave place_label_classes unset.")  # fmt: skip
        labels = place_labels(train.captions, DEFAULT_COLORS)  # (N, 2, 2, 2)
    started = time.time()
    model.train()
    stop = GracefulStop(accelerator)  # Ctrl-C / SIGTERM: save a checkpoint at the end of the step and exit
    last_eval = (None, None)  # (step, metrics) of the loop's latest evaluation
    while run.step < args.max_steps:
        totals = {}
        for micro in range(accumulation):
            index = process_batch_indices(accelerator, run.step, micro, len(train), args, regroup)
            pixels, ids = train.pixel_values(index), train.input_ids[index]
            batch_labels = None if labels is None else labels[index]
            with accelerator.accumulate(*trained_modules):
                # 1. the model's step on its phase objective (the discriminators score the generated images, eq. 9)
                with accelerator.autocast():
                    out = model(pixels, ids, discriminator=plain_discriminator, place_labels=batch_labels)
                backward_and_step(accelerator, out.loss, optimizer, trainable, args.max_grad_norm)
                record = {k: float(getattr(out, k).detach()) for k in _LOSSES if getattr(out, k) is not None}
                # 2. the discriminators' step (eq. 10) on the detached generated images
                if adversarial and out.generated_images is not None:
                    d_optimizer.zero_grad()  # drop what the generator's loss left on them
                    with accelerator.autocast():
                        d_loss = unwrapped.discriminator_loss(plain_discriminator, pixels, out, batch_labels)
                    backward_and_step(accelerator, d_loss, d_optimizer)
                    record["discriminator_loss"] = float(d_loss.detach())
            add_micro_batch(totals, record, accumulation)
        scheduler.step()
        record = totals
        run.step += 1
        record = mean_over_processes(accelerator, record)
        record = {"step": run.step, "lr": scheduler.get_last_lr()[0], **record}
        if accelerator.is_main_process:
            log.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if run.step % args.eval_steps == 0 or run.step == args.max_steps:
            if accelerator.is_main_process:
                metrics, _ = evaluate_alignment(
                    unwrapped, tokenizer, test.head(args.eval_images), args.r_precision_candidates, args.dataset
                )
                last_eval = (run.step, metrics)
                log.append({"step": run.step, **{f"eval_{k}": v for k, v in metrics.items()}})
                save_samples(unwrapped, tokenizer, test, output_dir, run.step)
            accelerator.wait_for_everyone()
        stopping = stop.requested()
        if stopping or run.step % args.checkpointing_steps == 0 or run.step == args.max_steps:
            save_run_checkpoint(
                run, args, output_dir, model, optimizer, scheduler, run_keys=_RUN_KEYS, accelerator=accelerator,
                extras=extras,
            )  # fmt: skip
        if stopping:
            stop.exit(run.step, output_dir)
    stop.close()
    bar.close()

    def evaluate() -> dict:
        if last_eval[0] == run.step:  # the loop has just evaluated this model (its last step)
            final = last_eval[1]
        else:
            final, _ = evaluate_alignment(
                unwrapped, tokenizer, test.head(args.eval_images), args.r_precision_candidates, args.dataset
            )
        plot_losses(
            log.read(), [k for k in (*_LOSSES, "discriminator_loss") if k in record], output_dir / "losses.png"
        )
        accelerator.print(json.dumps(final))
        weights = ("lambda_tim", "lambda_itm", "lambda_fake_image", "lambda_fake_text", "lambda_vta")
        return {
            "init_from": repo_relative(args.init_from) if args.init_from else None,
            "lambdas": {w: getattr(unwrapped.config, w) for w in weights},
            "train_image_backbone": args.train_image_backbone,
            "metrics": [{"metric": k, "split": "test", "value": round(v, 4)} for k, v in final.items()],
        }

    description = {
        "model": "laviter",
        "phase": args.phase,
        "dataset": f"{args.dataset}/{args.dataset_config or ('quad2' if args.dataset == 'caption_mnist' else '')}",
        "test_pairs": min(args.eval_images, len(test)),
    }
    return finish_run(
        accelerator, run, args, output_dir, started=started, saved=[(unwrapped, ""), (tokenizer, "")],
        description=description, evaluate=evaluate,
    )  # fmt: skip


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(lambda argv: main(parse_args(argv)), prog="train_laviter.py"))

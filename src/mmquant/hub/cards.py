"""Model cards generated from data (DESIGN.md convention 17): ``hub_cards/<name>.yaml`` (prose, tags, where the
checkpoint and its results file are) + the checkpoint's config + the results file -> ``README.md`` through
``huggingface_hub.ModelCard``, with ``model-index`` metadata. Numbers come only from the results file;
:func:`check_card` fails when a card disagrees with it.

    python -m mmquant.hub.cards render hub_cards/optvq-mnist.yaml   # writes <checkpoint_dir>/README.md
    python -m mmquant.hub.cards check hub_cards/optvq-mnist.yaml

The template is package data (``mmquant/hub/templates/``), so :func:`output_card_data` + :func:`render_model_card`
work from an installed wheel; a card data file may name its own ``template:`` (relative to the file).
"""

from __future__ import annotations

import json
from pathlib import Path

from mmquant.safe_paths import confined_path

__all__ = [
    "MODEL_TYPE_DEFAULTS",
    "check_card",
    "load_card_data",
    "output_card_data",
    "render_model_card",
    "run_card_commands",
]

TEMPLATE = "model_card_template.md"


# What a card says of every checkpoint of a model type, unless its card data says otherwise.
MODEL_TYPE_DEFAULTS = {
    "optvq": {
        "description": (
            "An image tokenizer trained with OptVQ: codes are assigned by entropic optimal transport (Sinkhorn-Knopp) "
            "over the batch instead of nearest neighbour, so the whole codebook stays in use."
        ),
        "task": ("image-to-image", "image reconstruction"),
        "tags": ["vector-quantization", "optimal-transport", "sinkhorn", "image-tokenizer", "mmquant"],
        "limitations": (
            "At inference each feature takes its nearest code (Sinkhorn depends on the batch); set "
            "`quantizer.sinkhorn_at_inference = True` to assign by Sinkhorn over the batch instead."
        ),
        "citation": """@article{zhang2024preventing,
    title   = {Preventing Local Pitfalls in Vector Quantization via Optimal Transport},
    author  = {Borui Zhang and Wenzhao Zheng and Jie Zhou and Jiwen Lu},
    journal = {ArXiv},
    year    = {2024},
    volume  = {abs/2412.15195}
}""",
    },
    "mxqvae": {
        "description": (
            "An MXQ-VAE image-text pair generator: a stage-1 multimodal cross quantizer turns an image and its "
            "caption into one joint code sequence, and a stage-2 GPT-2 prior samples such sequences, which stage 1 "
            "decodes into an image and a caption at once."
        ),
        "task": ("any-to-any", "image-text pair generation"),
        "tags": ["vector-quantization", "image-text", "text-to-image", "image-captioning", "mxq-vae", "mmquant"],
        "limitations": (
            "Trained on synthetic Caption MNIST pairs only, on a CPU budget far below the paper's; captions follow "
            "the dataset's templates. Semantic consistency is read by a small judge network trained on the same data."
        ),
        "citation": """@inproceedings{lee2022unconditional,
    title     = {Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
    author    = {Hyungyung Lee and Sungjin Park and Joonseok Lee and Edward Choi},
    booktitle = {NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
    year      = {2022}
}""",
    },
    "jwae": {
        "description": (
            "A jWAE joint image-text embedding: an image autoencoder and a caption autoencoder whose latents share "
            "one space, matched to a Gaussian prior by adversarial latent critics and aligned across modalities by "
            "a max-hinge ranking loss with hardest negatives (jWAE-MH), for cross-modal retrieval."
        ),
        "task": ("feature-extraction", "image-text retrieval"),
        "tags": ["image-text-retrieval", "joint-embedding", "wasserstein-autoencoder", "jwae", "mmquant"],
        "limitations": (
            "Trained on synthetic Caption MNIST pairs on a CPU budget; its captions follow the dataset's templates "
            "and it is not a general image-text model. Retrieval compares the directions of the latents (cosine)."
        ),
        "citation": """@inproceedings{mahajan2019joint,
    title     = {Joint Wasserstein Autoencoders for Aligning Multimodal Embeddings},
    author    = {Shweta Mahajan and Teresa Botschen and Iryna Gurevych and Stefan Roth},
    booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision Workshops},
    year      = {2019}
}""",
    },
    "laviter": {
        "description": (
            "A LAViTeR visual-text alignment model: image and text encoders aligned by DAMSM-style word-region and "
            "sentence-image matching (VTA), trained together with a text-to-image generator (TIM) and an image "
            "captioner (ITM) whose generated images and captions are matched with the real captions and images."
        ),
        "task": ("feature-extraction", "image-text alignment"),
        "tags": ["image-text-alignment", "text-to-image", "image-captioning", "laviter", "mmquant"],
        "limitations": (
            "Trained on synthetic Caption MNIST pairs on a CPU budget; its captions follow the dataset's templates "
            "and it is not a general image-text model. R-precision is computed with the model's own encoders."
        ),
        "citation": """@article{shaikh2021laviter,
    title   = {LAViTeR: Learning Aligned Visual and Textual Representations Assisted by Image and Caption Generation},
    author  = {Mohammad Abuzar Shaikh and Zhanghexuan Ji and Dana Moukheiber and Sargur Srihari and Mingchen Gao},
    journal = {arXiv preprint arXiv:2109.04993},
    year    = {2021}
}""",
    },
}


# the judge implements MXQ-VAE's semantic-consistency measure: its card cites that paper
MODEL_TYPE_DEFAULTS["caption_mnist_judge"] = {
    "task": ("image-classification", "reading Caption MNIST canvases"),
    "citation": MODEL_TYPE_DEFAULTS["mxqvae"]["citation"],
}


def _template_path() -> Path:
    from ..resources import templates_dir

    return templates_dir() / TEMPLATE


def load_card_data(path: str | Path) -> dict:
    """A ``hub_cards/<name>.yaml`` card data file, with paths resolved against the repository root."""
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"card data {path}: expected a YAML mapping, got {type(data).__name__}.")
    for key in ("checkpoint_dir", "repo_id", "title", "results_file", "results_runs", "description"):
        if key not in data:
            raise ValueError(f"card data {path}: missing key {key!r}.")
    root = path.resolve().parent.parent  # the repository root (hub_cards/ sits in it)
    # render writes <checkpoint_dir>/README.md: every path of the card data stays inside the repository
    data["_checkpoint"] = confined_path(root, data["checkpoint_dir"], f"card data {path}: checkpoint_dir")
    data["_results"] = confined_path(root, data["results_file"], f"card data {path}: results_file")
    if "template" in data:
        data["_template"] = confined_path(path.resolve().parent, data["template"], f"card data {path}: template")
    else:
        data["_template"] = _template_path()
    return data


def output_card_data(output_dir: str | Path, repo_id: str, title: str | None = None) -> dict:
    """Card data for a training output folder (``save_pretrained`` files + ``eval_results.json``), for publishing a
    run that has no ``hub_cards/`` entry: description, tags, limitations and citation are the model type's."""
    output_dir = Path(output_dir)
    config = json.loads((output_dir / "config.json").read_text())
    results = output_dir / "eval_results.json"
    return {
        "repo_id": repo_id,
        "title": title or f"{repo_id.split('/')[-1]} ({config.get('model_type')}, trained with mmquant)",
        "description": "",
        "results_runs": [output_dir.name] if results.is_file() else [],
        "datasets": [json.loads(results.read_text()).get("dataset", "unknown")] if results.is_file() else [],
        "_checkpoint": output_dir,
        "_results": results,
        "_template": _template_path(),
    }


def _rows(data: dict) -> tuple[list[dict], list[dict]]:
    if not data["results_runs"]:
        return [], []
    results_path = data["_results"]
    results = json.loads(results_path.read_text())
    if "metrics" in results:  # a training output's eval_results.json: one run
        results = {data["results_runs"][0]: results}
    rows, runs = [], []
    shown = set(data["results_metrics"]) if data.get("results_metrics") else None  # optional: the metrics to show
    for run in data["results_runs"]:
        if run not in results:
            raise ValueError(f"results file {results_path}: no run {run!r} (it has {sorted(results)}).")
        entry = results[run]
        keys = ("command", "commit", "session_commits", "steps", "processes")
        runs.append({"name": run, **{k: entry.get(k) for k in keys}})
        for m in entry["metrics"]:
            metric = m["metric"] if "degree" not in m else f"{m['metric']}_degree_{m['degree']}"
            if shown is not None and metric not in shown:
                continue
            rows.append({"run": run, "metric": metric, "split": m["split"], "value": m["value"]})
    return rows, runs


def render_model_card(card_data: str | Path | dict, sample_image: str | None = None):
    """The ``huggingface_hub.ModelCard`` of the checkpoint described by ``card_data`` (a ``hub_cards/*.yaml`` path, or
    the dict of :func:`output_card_data`); ``sample_image`` (or the card data's ``sample_image``): a file of the repo
    to show (e.g. a sample grid)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData
    from transformers import AutoConfig

    import mmquant  # noqa: F401  (registers the configs)

    data = card_data if isinstance(card_data, dict) else load_card_data(card_data)
    checkpoint = data["_checkpoint"]
    config = AutoConfig.from_pretrained(
        checkpoint / "stage1" if (checkpoint / "model_index.json").is_file() else checkpoint
    )
    defaults = MODEL_TYPE_DEFAULTS.get(config.model_type, {})
    rows, runs = _rows(data)
    own = data["results_runs"][0] if data["results_runs"] else None
    task_type, task_name = defaults.get("task", ("image-to-image", "image reconstruction"))
    eval_results = [
        EvalResult(
            task_type=task_type,
            task_name=task_name,
            dataset_type=ds,
            dataset_name=ds.upper(),
            dataset_split=r["split"],
            metric_type=r["metric"],
            metric_value=r["value"],
        )
        for r in rows
        if r["run"] == own
        for ds in data.get("datasets", ["unknown"])[:1]
    ]
    card_data = ModelCardData(
        library_name="mmquant",
        pipeline_tag=data.get("pipeline_tag", task_type),
        license=data.get("license", "mit"),
        tags=data.get("tags", defaults.get("tags")),
        datasets=data.get("datasets") or None,
        model_name=data["repo_id"].split("/")[-1],
        eval_results=eval_results,
    )
    details, usage, note = _details(checkpoint, config, data["repo_id"])
    usage = data.get("usage", usage).strip().replace("{repo_id}", data["repo_id"])
    return ModelCard.from_template(
        card_data,
        template_path=str(data["_template"]),
        title=data["title"],
        description=(data["description"] or defaults.get("description", "")).strip(),
        repo_id=data["repo_id"],
        sample_image=sample_image or data.get("sample_image"),
        loading_note=note,
        details=details,
        usage=usage,
        results=rows,
        runs=runs,
        limitations=data.get("limitations", defaults.get("limitations", "")).strip(),
        citation=data.get("citation", defaults.get("citation", "")).strip(),
    )


def _parameters(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def _details(checkpoint: Path, config, repo_id: str) -> tuple[list[tuple[str, str]], str, str]:
    """Model-details rows, a usage snippet and a loading note for the card of ``checkpoint``."""
    from transformers import AutoModel

    if (checkpoint / "model_index.json").is_file():
        return _pipeline_details(checkpoint, repo_id)
    import mmquant

    architecture = (config.architectures or [""])[0]
    model_class = getattr(mmquant, architecture, None) or AutoModel
    model = model_class.from_pretrained(checkpoint)
    note = (
        "It is a transformers model: `import mmquant` registers it with the Auto classes, so it loads without "
        "`trust_remote_code`. Weights are safetensors."
    )
    architecture = architecture or type(model).__name__
    rows = [
        ("architecture", f"`{architecture}` (`model_type: {config.model_type}`)"),
        ("parameters", _parameters(model)),
    ]
    if config.model_type == "jwae":
        return rows + _jwae_rows(config), _jwae_usage(config, repo_id), note
    if config.model_type == "laviter":
        return rows + _laviter_rows(config), _laviter_usage(config, repo_id), note
    if config.model_type != "optvq":
        usage = f'import mmquant\nfrom transformers import AutoModel\n\nmodel = AutoModel.from_pretrained("{repo_id}")'
        return rows, usage, note
    q = config.quantizer_config
    heads = q.get("num_heads", 1)
    grid = f"{config.latent_size}×{config.latent_size} grid" + (f" × {heads} heads" if heads > 1 else "")
    rows += [
        ("quantizer", q["type"]),
        (
            "codebook",
            f"{q['codebook_size']} codes of dimension {config.embed_dim // heads}"
            + (f", {heads} heads sharing it" if heads > 1 else ""),
        ),  # fmt: skip
        ("tokens per image", f"{config.tokens_per_image} ({grid})"),
        ("image size", f"{config.image_size}×{config.image_size}, {config.in_channels} channel(s), values in [-1, 1]"),
    ]
    shape = f"(4, {config.latent_size}, {config.latent_size}" + (f", {heads})" if heads > 1 else ")")
    c, n = config.in_channels, config.image_size
    usage = f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel

model = AutoModel.from_pretrained("{repo_id}").eval()
images = torch.rand(4, {c}, {n}, {n}) * 2 - 1   # your images, scaled to [-1, 1]
indices = model.encode_to_indices(images)        # {shape}
reconstruction = model.decode_indices(indices)   # (4, {c}, {n}, {n})"""
    return rows, usage, note


def _jwae_rows(config) -> list[tuple[str, str]]:
    c = config
    image = (
        f"{c.image_size}×{c.image_size}, {c.in_channels} channels, values in [-1, 1]"
        if c.image_input == "pixels"
        else f"precomputed {c.image_feature_dim}-d features"
    )
    ranking = {"max_hinge": f"max-hinge, margin {c.margin}", "mse": "MSE (jWAE-MSE)", "none": "none"}[c.ranking_loss]
    weights = (
        c.lambda_image_reconstruction,
        c.lambda_text_reconstruction,
        c.lambda_image_prior,
        c.lambda_text_prior,
    )
    return [
        ("latent space", f"{c.latent_dim}-d, prior N(0, I)"),
        ("image input", image),
        ("caption", f"up to {c.max_text_length} tokens, GRU of width {c.text_hidden_size}"),
        ("ranking loss", ranking),
        ("λ1..λ4", ", ".join(f"{w:g}" for w in weights)),
    ]


def _jwae_usage(config, repo_id: str) -> str:
    return f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel, AutoTokenizer
from mmquant.metrics.retrieval import rank_gallery

model = AutoModel.from_pretrained("{repo_id}").eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
captions = ["The red 7 is on the upper left, and the 3 on the bottom right is blue.", "This is white 3."]
ids = tokenizer(captions, padding="max_length", max_length={config.max_text_length}, return_tensors="pt").input_ids
images = torch.rand(1, 3, {config.image_size}, {config.image_size}) * 2 - 1   # your image, scaled to [-1, 1]
with torch.no_grad():
    scores, order = rank_gallery(model.get_image_features(images), model.get_text_features(ids), top_k=2)
print([captions[i] for i in order[0]])"""


def _laviter_rows(config) -> list[tuple[str, str]]:
    c, v, t = config, config.vision_config, config.text_config
    side = int(v.num_regions**0.5)
    weights = (c.lambda_tim, c.lambda_itm, c.lambda_fake_image, c.lambda_fake_text, c.lambda_vta)
    return [
        ("image encoder", f"{v.backbone}, {v.image_size}×{v.image_size} images, {side}×{side} regions"),
        ("text encoder", f"{t.num_layers}-layer transformer, captions up to {t.max_length} tokens"),
        ("features", f"{c.embed_dim}-d; γ1, γ2, γ3 = {c.gamma1:g}, {c.gamma2:g}, {c.gamma3:g}"),
        ("generator", ", ".join(f"{s}×{s}" for s in c.generator_sizes) if c.use_tim else "none"),
        ("captioner", f"{c.captioner_num_layers}-layer encoder and GPT-2 decoder" if c.use_itm else "none"),
        ("λ1..λ5 (eq. 16)", ", ".join(f"{w:g}" for w in weights)),
    ]


def _laviter_usage(config, repo_id: str) -> str:
    n, length = config.vision_config.image_size, config.text_config.max_length
    return f"""import torch
import mmquant  # registers the model classes
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{repo_id}").eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
images = torch.rand(2, 3, {n}, {n}) * 2 - 1   # your images, scaled to [-1, 1]
captions = tokenizer.batch_decode(model.generate_captions(images), skip_special_tokens=True)
ids = tokenizer(["The red 7 is on the upper left, and the white 3 is on the bottom right."],
                padding="max_length", max_length={length}, return_tensors="pt").input_ids
drawn = model.generate_images(ids, generator=torch.Generator().manual_seed(0))   # (1, 3, {n}, {n})
similarity = torch.cosine_similarity(model.get_image_features(drawn), model.get_text_features(ids))"""


def _corruption_scope(config, tokenizer) -> str:
    """What text corruption picks and does, for the card's "training masks" row."""
    if not config.text_corruption_groups:
        return " of all tokens, to [MASK]"
    words = " / ".join(" ".join(tokenizer.convert_ids_to_tokens(g)) for g in config.text_corruption_groups)
    return (
        f" of the words {words}, {1 - config.text_replace_ratio:.0%} to [MASK] and {config.text_replace_ratio:.0%}"
        " to another word of their group"
    )


def _pipeline_details(folder: Path, repo_id: str) -> tuple[list[tuple[str, str]], str, str]:
    """Details of an MXQ-VAE pipeline folder (``stage1/``, ``prior/``, ``tokenizer/``, ``model_index.json``)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    stage1 = AutoModel.from_pretrained(folder / "stage1")
    prior = AutoModelForCausalLM.from_pretrained(folder / "prior")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    c, p = stage1.config, prior.config
    q_type, masks = c.quantizer_config["type"], (c.image_mask_ratio, c.image_mask_patch_size, c.text_mask_ratio)
    rows = [
        ("pipeline", "`MXQVAEPipeline` (diffusers `DiffusionPipeline`): `stage1/`, `prior/`, `tokenizer/`"),
        ("stage 1", f"`MXQVAEModel`, {_parameters(stage1)} parameters, fusion `{c.fusion}`"),
        ("prior", f"`MXQVAEPriorForCausalLM` (GPT-2, {p.n_layer} layers, width {p.n_embd}), {_parameters(prior)} "
         "parameters"),
        ("codebook", f"{c.codebook_size} codes of dimension {c.hidden_size}, quantizer `{q_type}`"),
        ("joint codes", f"{c.num_tokens} per pair: {c.num_image_tokens} image + {c.text_latent_length} text slots"),
        ("image", f"{c.image_size}×{c.image_size} RGB, values in [-1, 1]"),
        ("caption", f"up to {c.max_text_length} tokens, word-level vocabulary of {len(tokenizer)}"),
        ("training masks", "image masking {:.0%} of {}px patches, text corruption {:.0%}".format(*masks)
         + _corruption_scope(c, tokenizer)),
    ]  # fmt: skip
    usage = f"""import mmquant  # registers the model classes
from mmquant.pipelines import MXQVAEPipeline

pipe = MXQVAEPipeline.from_pretrained("{repo_id}")
out = pipe(num_samples=8, seed=0)          # out.images (PIL), out.captions (str)
out = pipe(caption="The red 7 is on the upper left, and the 3 on the bottom right is blue.")  # text -> image
MXQVAEPipeline.save_grid(out, "pairs.png")"""
    note = (
        "It is a diffusers pipeline of two transformers models and a tokenizer: `import mmquant` registers the "
        "models, so it loads without `trust_remote_code`. Weights are safetensors."
    )
    return rows, usage, note


def check_card(card_data_path: str | Path) -> list[str]:
    """Differences between the checkpoint's ``README.md`` and a fresh rendering from the results file (empty = ok)."""
    data = load_card_data(card_data_path)
    readme = data["_checkpoint"] / "README.md"
    if not readme.exists():
        return [f"{readme} is missing; run `python -m mmquant.hub.cards render {card_data_path}`."]
    expected = str(render_model_card(card_data_path))
    actual = readme.read_text()
    if actual.strip() == expected.strip():
        return []
    rows, _ = _rows(data)
    problems = [
        f"{r['run']} {r['metric']} {r['split']} = {r['value']} is not in {readme}"
        for r in rows
        if f"| {r['value']} |" not in actual
    ]
    return problems or [f"{readme} differs from its rendering; re-render it."]


def run_card_commands(argv, description: str, render, check, readme_path) -> int:
    """The ``render|check <card data>...`` command line shared by the model, dataset and metric card modules."""
    from ..arguments import make_parser

    parser = make_parser(description)
    parser.add_argument("command", choices=["render", "check"], help="write the card(s), or check them against it")
    parser.add_argument("card_data", nargs="+", help="card data file(s) (YAML)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.card_data:
        if args.command == "render":
            out = readme_path(path)
            render(path).save(out)
            print(f"wrote {out}")
        else:
            problems = check(path)
            for problem in problems:
                print(problem)
            status |= bool(problems)
    return status


def _readme_path(card_data_path) -> Path:
    return load_card_data(card_data_path)["_checkpoint"] / "README.md"


def main(argv=None) -> int:
    return run_card_commands(argv, __doc__, render_model_card, check_card, _readme_path)


if __name__ == "__main__":
    raise SystemExit(main())

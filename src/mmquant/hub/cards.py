"""Model cards generated from data (DESIGN.md convention 17): ``hub_cards/<name>.yaml`` (prose, tags, where the
checkpoint and its results file are) + the checkpoint's config + the results file -> ``README.md`` through
``huggingface_hub.ModelCard``, with ``model-index`` metadata. Numbers come only from the results file;
:func:`check_card` fails when a card disagrees with it.

    python -m mmquant.hub.cards render hub_cards/optvq-mnist.yaml   # writes <checkpoint_dir>/README.md
    python -m mmquant.hub.cards check hub_cards/optvq-mnist.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
}


def _checkout_root() -> Path:
    return Path(__file__).resolve().parents[3]


def load_card_data(path: str | Path) -> dict:
    """A ``hub_cards/<name>.yaml`` card data file, with paths resolved against the repository root."""
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text())
    for key in ("checkpoint_dir", "repo_id", "title", "results_file", "results_runs", "description"):
        if key not in data:
            raise ValueError(f"card data {path}: missing key {key!r}.")
    root = path.resolve().parent.parent  # the repository root (hub_cards/ sits in it)
    data["_checkpoint"] = root / data["checkpoint_dir"]
    data["_results"] = root / data["results_file"]
    data["_template"] = path.resolve().parent / TEMPLATE
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
        "_template": _checkout_root() / "hub_cards" / TEMPLATE,
    }


def _rows(data: dict) -> tuple[list[dict], list[dict]]:
    if not data["results_runs"]:
        return [], []
    results_path = data["_results"]
    results = json.loads(results_path.read_text())
    if "metrics" in results:  # a training output's eval_results.json: one run
        results = {data["results_runs"][0]: results}
    rows, runs = [], []
    for run in data["results_runs"]:
        if run not in results:
            raise ValueError(f"results file {results_path}: no run {run!r} (it has {sorted(results)}).")
        entry = results[run]
        keys = ("command", "commit", "session_commits", "steps", "processes")
        runs.append({"name": run, **{k: entry.get(k) for k in keys}})
        for m in entry["metrics"]:
            rows.append({"run": run, "metric": m["metric"], "split": m["split"], "value": m["value"]})
    return rows, runs


def render_model_card(card_data: str | Path | dict, sample_image: str | None = None):
    """The ``huggingface_hub.ModelCard`` of the checkpoint described by ``card_data`` (a ``hub_cards/*.yaml`` path, or
    the dict of :func:`output_card_data`); ``sample_image``: a file of the repo to show (e.g. a sample grid)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData
    from transformers import AutoConfig

    import mmquant  # noqa: F401  (registers the configs)

    data = card_data if isinstance(card_data, dict) else load_card_data(card_data)
    checkpoint = data["_checkpoint"]
    config = AutoConfig.from_pretrained(checkpoint)
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
        license=data.get("license", "mit"),
        tags=data.get("tags", defaults.get("tags")),
        datasets=data.get("datasets") or None,
        model_name=data["repo_id"].split("/")[-1],
        eval_results=eval_results,
    )
    from transformers import AutoModel

    parameters = sum(p.numel() for p in AutoModel.from_pretrained(checkpoint).parameters())
    q = config.quantizer_config
    heads = q.get("num_heads", 1)
    indices_shape = f"(4, {config.latent_size}, {config.latent_size}" + (f", {heads})" if heads > 1 else ")")
    return ModelCard.from_template(
        card_data,
        template_path=str(data["_template"]),
        title=data["title"],
        description=(data["description"] or defaults.get("description", "")).strip(),
        repo_id=data["repo_id"],
        sample_image=sample_image,
        architecture=(config.architectures or ["OptVQModel"])[0],
        model_type=config.model_type,
        parameters=f"{parameters:,}",
        quantizer=q["type"],
        codebook_size=q["codebook_size"],
        codebook_dim=config.embed_dim // heads,
        num_heads=heads,
        tokens_per_image=config.tokens_per_image,
        latent_size=config.latent_size,
        image_size=config.image_size,
        in_channels=config.in_channels,
        indices_shape=indices_shape,
        results=rows,
        runs=runs,
        limitations=data.get("limitations", defaults.get("limitations", "")).strip(),
        citation=data.get("citation", defaults.get("citation", "")).strip(),
    )


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
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["render", "check"])
    parser.add_argument("card_data", nargs="+")
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

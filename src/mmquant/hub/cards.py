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
    "check_card",
    "load_card_data",
    "output_card_data",
    "render_model_card",
    "run_card_commands",
]

TEMPLATE = "model_card_template.md"


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


def _tables(data: dict) -> list[dict]:
    """The card data's ``results_tables`` (optional; e.g. a seeded ablation): each ``{title, runs, metrics}`` becomes
    a table, a row per run of the results file and a column per metric; a run's ``<metric>_std``, when recorded (a
    mean over seeds), is shown as ``value ± std``; a metric the run lacks shows as ``—``."""
    specs = data.get("results_tables") or []
    if not specs:
        return []
    results = json.loads(data["_results"].read_text())
    tables = []
    for spec in specs:
        missing = [run for run in spec["runs"] if run not in results]
        if missing:
            raise ValueError(
                f"results file {data['_results']}: no run(s) {missing} (results_tables {spec['title']!r})."
            )
        rows = []
        for run in spec["runs"]:
            values = {m["metric"]: m["value"] for m in results[run]["metrics"]}
            cells = []
            for metric in spec["metrics"]:
                value = values.get(metric, "—")
                std = values.get(f"{metric}_std")
                cells.append(f"{value} ± {std}" if std is not None else str(value))
            rows.append({"run": run, "cells": cells})
        command = results[spec["runs"][0]].get("command")
        tables.append({"title": spec["title"], "metrics": spec["metrics"], "rows": rows, "command": command})
    return tables


def render_model_card(card_data: str | Path | dict, sample_image: str | None = None):
    """The ``huggingface_hub.ModelCard`` of the checkpoint described by ``card_data`` (a ``hub_cards/*.yaml`` path, or
    the dict of :func:`output_card_data`); ``sample_image`` (or the card data's ``sample_image``): a file of the repo
    to show (e.g. a sample grid)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData
    from transformers import AutoConfig

    from ..models.auto import register_auto_classes
    from ..models.registry import card_info

    register_auto_classes()  # the configs load with AutoConfig
    data = card_data if isinstance(card_data, dict) else load_card_data(card_data)
    checkpoint = data["_checkpoint"]
    config = AutoConfig.from_pretrained(
        checkpoint / "stage1" if (checkpoint / "model_index.json").is_file() else checkpoint
    )
    info = card_info(config.model_type)  # what the model's folder says of it (models/<name>/card_<name>.py)
    rows, runs = _rows(data)
    own = data["results_runs"][0] if data["results_runs"] else None
    task_type, task_name = info.task
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
        tags=data.get("tags", list(info.tags) or None),
        datasets=data.get("datasets") or None,
        model_name=data["repo_id"].split("/")[-1],
        eval_results=eval_results,
    )
    details, usage, note = _details(checkpoint, config, info, data["repo_id"])
    usage = data.get("usage", usage).strip().replace("{repo_id}", data["repo_id"])
    return ModelCard.from_template(
        card_data,
        template_path=str(data["_template"]),
        title=data["title"],
        description=(data["description"] or info.description).strip(),
        repo_id=data["repo_id"],
        sample_image=sample_image or data.get("sample_image"),
        loading_note=note,
        details=details,
        usage=usage,
        results=rows,
        runs=runs,
        tables=_tables(data),
        limitations=data.get("limitations", info.limitations).strip(),
        citation=data.get("citation", info.citation).strip(),
    )


def _details(checkpoint: Path, config, info, repo_id: str) -> tuple[list[tuple[str, str]], str, str]:
    """Model-details rows, a usage snippet and a loading note for the card of ``checkpoint`` (``info``: the model
    type's card details)."""
    from transformers import AutoModel

    from ..models.auto import registered_model_classes
    from ..models.card_info import parameter_count

    if (checkpoint / "model_index.json").is_file():
        return _pipeline_details(checkpoint, info, repo_id)
    architecture = (config.architectures or [""])[0]
    # the class the checkpoint was saved from (AutoModel for a class the Auto mapping does not pick)
    model_class = next((c for c in registered_model_classes() if c.__name__ == architecture), AutoModel)
    model = model_class.from_pretrained(checkpoint)
    note = (
        "It is a transformers model: `import mmquant` registers it with the Auto classes, so it loads without "
        "`trust_remote_code`. Weights are safetensors."
    )
    architecture = architecture or type(model).__name__
    rows = [
        ("architecture", f"`{architecture}` (`model_type: {config.model_type}`)"),
        ("parameters", parameter_count(model)),
    ]
    own_rows, usage = info.details(config, repo_id)
    return rows + own_rows, usage, note


def _pipeline_details(folder: Path, info, repo_id: str) -> tuple[list[tuple[str, str]], str, str]:
    """Details of an MXQ-VAE pipeline folder (``stage1/``, ``prior/``, ``tokenizer/``, ``model_index.json``, and
    ``caption_prior/`` where it has one)."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    stage1 = AutoModel.from_pretrained(folder / "stage1")
    prior = AutoModelForCausalLM.from_pretrained(folder / "prior")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    caption_prior = None
    if (folder / "caption_prior" / "config.json").is_file():  # the optional text -> image prior
        caption_prior = AutoModelForCausalLM.from_pretrained(folder / "caption_prior")
    rows, usage = info.pipeline_details(stage1, prior, tokenizer, repo_id, caption_prior=caption_prior)
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

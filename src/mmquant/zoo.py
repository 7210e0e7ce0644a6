"""The model zoo: every named checkpoint of mmquant, shipped in the repository and/or published on the Hub.

    import mmquant.zoo as zoo
    zoo.list_checkpoints()                 # [ZooEntry(name="optvq-mnist", repo_id="mmquant/optvq-mnist", ...)]
    model = zoo.load("optvq-mnist")        # offline from the checkpoint shipped inside the package

    mmquant zoo list                       # the same from the command line
    mmquant zoo info optvq-mnist

The index ``zoo_index.json`` and the shipped checkpoints (``mmquant/checkpoints/<name>/``) are package data, so
``zoo.load`` works offline from any install, a wheel included. The index is generated from the card data files
``hub_cards/*.yaml`` of the source repository and their results files by ``python -m mmquant.zoo build-index`` (run
from the repository root): headline results are read from the results files, never typed; a test checks that the
index is up to date. A name whose checkpoint is not in the package is loaded from its Hub repository. Reading the
index (:mod:`mmquant.zoo_catalog`) needs no model or pipeline, so the models resolve zoo names through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .zoo_catalog import _INDEX, ZooEntry, get_checkpoint, list_checkpoints, resolve

__all__ = ["ZooEntry", "build_index", "get_checkpoint", "list_checkpoints", "load", "resolve"]


def _headline(data: dict, root: Path) -> str:
    results = json.loads((root / data["results_file"]).read_text())
    if "metrics" not in results:  # a file of several runs: this checkpoint's is the first listed
        results = results[data["results_runs"][0]]
    wanted = data["zoo"].get("headline", [])
    parts = []
    for metric in results["metrics"]:
        if metric["metric"] in wanted:
            unit = f" {metric['unit']}" if metric.get("unit") else ""
            parts.append(f"{metric['metric']} {metric['value']}{unit} ({metric['split']})")
    return ", ".join(parts)


def build_index(cards_dir: str | Path | None = None) -> list[dict]:
    """The zoo index built from ``hub_cards/*.yaml`` (model cards with a ``zoo:`` section) of the source repository;
    ``cards_dir`` defaults to ``hub_cards/`` of the current directory (the repository root)."""
    import yaml

    cards_dir = Path(cards_dir) if cards_dir is not None else Path("hub_cards")
    if not cards_dir.is_dir():
        raise FileNotFoundError(f"cards_dir={str(cards_dir)!r}: no such folder; run from the repository root.")
    root = cards_dir.resolve().parent
    entries = []
    for path in sorted(cards_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if "zoo" not in data:
            continue
        folder = root / data["checkpoint_dir"]
        kind = "pipeline" if (folder / "model_index.json").is_file() else "model"
        config = json.loads((folder / ("stage1/config.json" if kind == "pipeline" else "config.json")).read_text())
        entry = ZooEntry(
            name=data["zoo"]["name"],
            repo_id=data["repo_id"],
            model_type=config["model_type"],
            kind=kind,
            size=data["zoo"]["size"],
            dataset=", ".join(data.get("datasets", [])),
            headline=_headline(data, root),
            checkpoint_dir=data["checkpoint_dir"],
            card_data=path.resolve().relative_to(root).as_posix(),
        )
        entries.append(asdict(entry))
    return entries


def load(name: str, **kwargs):
    """A zoo checkpoint (or any repo id / folder): ``AutoModel.from_pretrained`` for a model, the pipeline class's
    ``from_pretrained`` for a pipeline (the Auto classes are registered: importing ``mmquant.zoo`` ran
    ``mmquant/__init__``)."""
    from transformers import AutoModel

    try:
        kind = get_checkpoint(name).kind
    except KeyError:
        kind = "pipeline" if (Path(name) / "model_index.json").is_file() else "model"
    if kind == "pipeline":
        from .pipelines import MXQVAEPipeline

        return MXQVAEPipeline.from_pretrained(resolve(name), **kwargs)
    return AutoModel.from_pretrained(resolve(name), **kwargs)


def _print_table(entries: list[ZooEntry]) -> None:
    rows = [("name", "model type", "kind", "size", "dataset", "headline", "hub repo", "shipped")]
    rows += [
        (
            e.name,
            e.model_type,
            e.kind,
            e.size,
            e.dataset,
            e.headline,
            e.repo_id,
            e.checkpoint_dir if e.local_path else "-",
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    from .arguments import HelpFormatter, make_parser

    parser = make_parser(__doc__, prog="mmquant zoo")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = {"formatter_class": HelpFormatter, "allow_abbrev": False}
    commands.add_parser("list", help="list the named checkpoints", **sub)
    info = commands.add_parser("info", help="one checkpoint, as JSON", **sub)
    info.add_argument("name", help="short name (optvq-mnist) or Hub repo id of a zoo checkpoint")
    commands.add_parser(
        "build-index", help="regenerate zoo_index.json from hub_cards/*.yaml (maintainers, repository root)", **sub
    )
    args = parser.parse_args(argv)
    if args.command == "list":
        _print_table(list_checkpoints())
    elif args.command == "info":
        entry = get_checkpoint(args.name)
        print(json.dumps({**asdict(entry), "load_from": resolve(args.name)}, indent=2))
    else:
        _INDEX.write_text(json.dumps(build_index(), indent=2) + "\n")
        print(f"wrote {_INDEX}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

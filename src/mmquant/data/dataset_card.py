"""Dataset cards generated from data: ``dataset_scripts/<builder>/card_data.yaml`` (prose, tags, column notes) + the
builder itself (configs, features, split sizes, description, citation, license) -> the ``README.md`` beside them,
through ``huggingface_hub.DatasetCard``, with the ``configs`` metadata that lets ``datasets.load_dataset`` read an
export made by ``mmquant-data build ... --format parquet``. It sits with the data (the exporter writes the card
beside the Parquet files); the render/check command line is :mod:`mmquant.hub.dataset_cards`:

    python -m mmquant.hub.dataset_cards render src/mmquant/dataset_scripts/caption_mnist/card_data.yaml
    python -m mmquant.hub.dataset_cards check src/mmquant/dataset_scripts/*/card_data.yaml

The builders, their card data and the template are package data (``mmquant.resources``), so cards render from a wheel.
"""

from __future__ import annotations

from pathlib import Path

from mmquant.safe_paths import check_path_component

__all__ = ["check_dataset_card", "load_dataset_card_data", "readme_path", "render_dataset_card"]

TEMPLATE = "dataset_card_template.md"
_REQUIRED = ("builder", "repo_id", "pretty_name", "summary", "columns")


def load_dataset_card_data(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"dataset card data {path}: expected a YAML mapping, got {type(data).__name__}.")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ValueError(f"dataset card data {path}: missing keys {missing}.")
    from ..resources import templates_dir

    # render writes README.md beside the builder: the builder is one folder name
    check_path_component(data["builder"], f"dataset card data {path}: builder")
    data["_readme"] = path.resolve().parent / "README.md"  # the card data sits beside its builder
    data["_template"] = templates_dir() / TEMPLATE
    return data


def _split_rows(config) -> dict[str, int | None]:
    """Rows per split when the config fixes them (generated datasets), else None (it depends on the local copy)."""
    num_examples = getattr(config, "num_examples", None)
    if not isinstance(num_examples, dict):
        return {}
    per_example = config.num_objects + 1 if getattr(config, "degree", False) else 1
    return {split: n * per_example for split, n in num_examples.items()}


def _size_category(rows: int | None) -> str | None:
    """The Hub's size_categories label for the largest config."""
    if rows is None:
        return None
    for bound, label in ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"), (1e6, "100K<n<1M")):
        if rows < bound:
            return label
    return "n>1M"


def _feature_type(feature) -> str:
    import datasets

    if isinstance(feature, datasets.Value):
        return feature.dtype
    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.List):
        return f"list of {_feature_type(feature.feature)}"
    if isinstance(feature, dict):
        return "{" + ", ".join(f"{k}: {_feature_type(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__


def _configs(data: dict, sizes: dict[str, dict[str, int]] | None) -> list[dict]:
    from .builders import load_builder, load_builder_class

    builder_class = load_builder_class(data["builder"])
    configs = []
    for config in builder_class.BUILDER_CONFIGS or [None]:
        name = config.name if config is not None else "default"
        if sizes is not None and name not in sizes:
            continue
        # the builder only reads data_dir when preparing; a placeholder lets local-folder builders describe
        # themselves without their data
        builder = load_builder(data["builder"], config.name if config else None, data_dir="<data_dir>")
        info = builder._info()
        rows = sizes[name] if sizes is not None else _split_rows(builder.config)
        declared = data.get("splits", ["train", "test"])  # local-folder builders: a list, or one per config
        splits = list(rows) or (declared.get(name, []) if isinstance(declared, dict) else declared)
        notes = data["columns"]
        configs.append(
            {
                "name": name,
                "splits": splits,
                "sizes": rows,
                "columns": [
                    {"name": col, "type": _feature_type(feat), "note": notes.get(col, "").strip()}
                    for col, feat in info.features.items()
                ],
                "info": info,
            }
        )
    return configs


def render_dataset_card(card_data_path: str | Path, sizes: dict[str, dict[str, int]] | None = None):
    """The ``huggingface_hub.DatasetCard`` of the builder described by ``card_data_path``.

    By default it describes every config with the split sizes its builder config fixes; ``sizes`` (``{config:
    {split: rows}}``, e.g. of an export) restricts it to those configs and states their real sizes."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = load_dataset_card_data(card_data_path)
    configs = _configs(data, sizes)
    if not configs:
        raise ValueError(f"sizes: none of the configs {sorted(sizes)} belongs to builder {data['builder']!r}.")
    info = configs[0]["info"]
    names = [c["name"] for c in configs]
    builder = data["builder"]
    total = max((sum(c["sizes"].values()) for c in configs if c["sizes"]), default=None)
    card_data = DatasetCardData(
        pretty_name=data["pretty_name"],
        license=data.get("license"),
        language=data.get("language", ["en"]),
        task_categories=data.get("task_categories"),
        tags=data.get("tags"),
        size_categories=_size_category(total),
        configs=[
            {
                "config_name": c["name"],
                "data_files": [{"split": s, "path": f"{c['name']}/{s}-*.parquet"} for s in c["splits"]],
            }
            for c in configs
        ],
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(data["_template"]),
        pretty_name=data["pretty_name"],
        repo_id=data["repo_id"],
        builder=data["builder"],
        default_config=data.get("default_config") if data.get("default_config") in names else names[0],
        summary=data["summary"].strip(),
        description=info.description.strip(),
        homepage=info.homepage,
        license_text=info.license,
        citation=info.citation.strip(),
        configs=configs,
        build_example=data.get("build_example", f"mmquant-data build {builder} --output out/{builder}"),
        source_data=data.get("source_data", "").strip(),
        uses=data.get("uses", "").strip(),
        limitations=data.get("limitations", "").strip(),
    )


def readme_path(card_data_path: str | Path) -> Path:
    """The ``README.md`` the card of ``card_data_path`` is rendered to (beside the builder)."""
    return load_dataset_card_data(card_data_path)["_readme"]


def check_dataset_card(card_data_path: str | Path) -> list[str]:
    """Differences between the builder's README.md and a fresh rendering (empty = up to date)."""
    readme = readme_path(card_data_path)
    if not readme.exists():
        return [f"{readme} is missing; run `python -m mmquant.hub.dataset_cards render {card_data_path}`."]
    if readme.read_text().strip() != str(render_dataset_card(card_data_path)).strip():
        return [f"{readme} differs from its rendering; run `python -m mmquant.hub.dataset_cards render ...`."]
    return []

"""Publish a prepared dataset: Parquet files in the Hub's layout plus the generated dataset card, on disk or in a
Hub dataset repo.

    CARD = dataset_scripts_dir() / "caption_mnist" / "card_data.yaml"   # mmquant.data.builders
    export_parquet(dataset_dict, "out/caption-mnist", "quad4", card_data=CARD)
    datasets.load_dataset("out/caption-mnist", "quad4")          # reads it back (the card's YAML lists the files)
    push_dataset(dataset_dict, "me/caption-mnist", "quad4", card_data=CARD)

Files go to ``<config>/<split>-00000-of-00001.parquet``, the layout ``DatasetDict.push_to_hub`` uses, so a local
export and a Hub repo read the same way. Several configs can be exported into one folder; the card is re-rendered
each time to describe exactly the configs and row counts present.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["export_parquet", "parquet_export_sizes", "push_dataset"]


def parquet_export_sizes(output_dir: str | Path) -> dict[str, dict[str, int]]:
    """``{config: {split: rows}}`` of the Parquet files under ``output_dir`` (read from their footers)."""
    import pyarrow.parquet as pq

    sizes: dict[str, dict[str, int]] = {}
    for path in sorted(Path(output_dir).glob("*/*-of-*.parquet")):
        split = path.name.split("-")[0]
        config = sizes.setdefault(path.parent.name, {})
        config[split] = config.get(split, 0) + pq.read_metadata(path).num_rows
    order = {"train": 0, "validation": 1, "test": 2}
    return {c: dict(sorted(s.items(), key=lambda kv: (order.get(kv[0], 3), kv[0]))) for c, s in sizes.items()}


def _embed_external_files(dataset):
    """The dataset with images held by path (local-folder builders) replaced by their bytes, as ``push_to_hub``
    does, so the Parquet files stand alone."""
    from datasets.features.features import require_storage_embed
    from datasets.table import embed_table_storage

    if not require_storage_embed(dataset.features):
        return dataset
    fmt = dataset.format
    embedded = dataset.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
    return embedded.with_format(**fmt)


def export_parquet(
    dataset_dict, output_dir: str | Path, config_name: str = "default", card_data: str | Path | None = None
) -> list[Path]:
    """Write each split of ``dataset_dict`` as Parquet under ``output_dir/<config_name>/`` (images embedded as
    bytes) and, with ``card_data`` (a ``dataset_scripts/<builder>/card_data.yaml``), the card as
    ``output_dir/README.md``. ``config_name`` is one folder name (no ``/`` or ``..``): the files and the stale-file
    cleanup stay inside ``output_dir``."""
    from mmquant.safe_paths import check_path_component, confined_path

    check_path_component(config_name, "config_name")
    target = confined_path(output_dir, config_name, "config_name")
    for split in dataset_dict:
        check_path_component(split, "split name")
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*-of-*.parquet"):  # a re-export replaces the config's files, never mixes them
        stale.unlink()
    paths = []
    for split, dataset in dataset_dict.items():
        path = target / f"{split}-00000-of-00001.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        _embed_external_files(dataset).to_parquet(str(tmp))
        tmp.replace(path)  # atomic: a reader never sees half a file
        paths.append(path)
    if card_data is not None:
        from .dataset_card import render_dataset_card

        render_dataset_card(card_data, sizes=parquet_export_sizes(output_dir)).save(Path(output_dir) / "README.md")
    return paths


def push_dataset(
    dataset_dict,
    repo_id: str,
    config_name: str = "default",
    card_data: str | Path | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
) -> str:
    """``DatasetDict.push_to_hub`` (Parquet), then the generated card as README.md: it describes the configs and row
    counts the repo now holds (from the ``dataset_info`` push_to_hub records) and keeps push_to_hub's metadata."""
    from huggingface_hub import DatasetCard, HfApi

    dataset_dict.push_to_hub(repo_id, config_name=config_name, private=private, token=token)
    if card_data is not None:
        from .dataset_card import render_dataset_card

        pushed = DatasetCard.load(repo_id, repo_type="dataset", token=token).data.to_dict()
        infos = pushed.get("dataset_info") or []
        infos = [infos] if isinstance(infos, dict) else infos
        sizes = {
            info.get("config_name", "default"): {s["name"]: s["num_examples"] for s in info.get("splits", [])}
            for info in infos
        }
        sizes = sizes or {config_name: {split: len(d) for split, d in dataset_dict.items()}}
        card = render_dataset_card(card_data, sizes=sizes)
        for key in ("configs", "dataset_info"):
            if pushed.get(key) is not None:
                setattr(card.data, key, pushed[key])
        HfApi(token=token).upload_file(
            path_or_fileobj=str(card).encode(),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=f"Dataset card ({config_name})",
        )
    return repo_id

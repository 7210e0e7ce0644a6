"""Run the dataset builders of ``dataset_scripts/<name>/<name>.py`` (DESIGN.md, Decisions: datasets 4+ no longer
runs loading scripts, so the builders are ``datasets.GeneratorBasedBuilder`` subclasses run directly).

    from mmquant.data.builders import build_dataset
    ds = build_dataset("caption_mnist", "quad4")                 # DatasetDict, prepared offline as Arrow
    ds = build_dataset("flowers102_captions", data_dir="/data/flowers")

The cache key of a prepared dataset includes a hash of the builder file and of the mmquant data modules, so
editing the generator never serves a stale cache. The scripts are looked up in ``$MMQUANT_DATASET_SCRIPTS``, then
in the ``dataset_scripts/`` folder that ships inside the package (``mmquant/dataset_scripts``, package data).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

__all__ = ["build_dataset", "dataset_scripts_dir", "list_builders", "load_builder", "load_builder_class"]

_ENV = "MMQUANT_DATASET_SCRIPTS"


def dataset_scripts_dir(scripts_dir: str | Path | None = None) -> Path:
    """The folder holding ``<name>/<name>.py`` builders: ``scripts_dir``, else ``$MMQUANT_DATASET_SCRIPTS``, else the
    package's own ``dataset_scripts/``."""
    from ..resources import dataset_scripts_root

    candidates = [scripts_dir, os.environ.get(_ENV), dataset_scripts_root()]
    for candidate in candidates:
        if candidate is not None and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError(
        f"No dataset_scripts/ folder found (tried {[str(c) for c in candidates if c is not None]}): the builders ship "
        f"inside the mmquant package; reinstall it, or pass scripts_dir=<path to dataset_scripts> (or set ${_ENV})."
    )


def list_builders(scripts_dir: str | Path | None = None) -> list[str]:
    """Names of the available builders (folders ``<name>/`` holding ``<name>.py``)."""
    root = dataset_scripts_dir(scripts_dir)
    return sorted(p.name for p in root.iterdir() if (p / f"{p.name}.py").is_file())


def _source_hash(script: Path) -> str:
    """Hash of the builder file and of the mmquant data modules it generates with."""
    digest = hashlib.sha256(script.read_bytes())
    for module in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(module.name.encode())
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def load_builder_class(name: str, scripts_dir: str | Path | None = None):
    """The ``GeneratorBasedBuilder`` subclass defined in ``dataset_scripts/<name>/<name>.py``."""
    import datasets

    root = dataset_scripts_dir(scripts_dir)
    script = root / name / f"{name}.py"
    if not script.is_file():
        raise ValueError(f"name={name!r}: no builder {script}; available builders: {list_builders(root)}.")
    module_name = f"mmquant_dataset_scripts.{name}"
    spec = importlib.util.spec_from_file_location(module_name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, datasets.DatasetBuilder)
        and obj.__module__ == module_name
        and not getattr(obj, "__abstractmethods__", None)
    ]
    if len(classes) != 1:
        found = [c.__name__ for c in classes]
        raise RuntimeError(f"{script}: expected exactly one dataset builder class, found {found}.")
    builder_class = classes[0]
    builder_class._mmquant_hash = _source_hash(script)
    builder_class._mmquant_script = script
    return builder_class


def load_builder(
    name: str,
    config_name: str | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    scripts_dir: str | Path | None = None,
    **config_kwargs,
):
    """An instance of builder ``name`` with config ``config_name``; ``config_kwargs`` override that config's fields
    (e.g. ``seed=1``, ``num_examples={"train": 1000}``)."""
    builder_class = load_builder_class(name, scripts_dir)
    known = [c.name for c in builder_class.BUILDER_CONFIGS]
    if known and config_name is not None and config_name not in known:
        raise ValueError(f"config_name={config_name!r}: builder {name!r} has the configs {known}.")
    kwargs = dict(config_kwargs)
    if data_dir is not None:
        kwargs["data_dir"] = str(data_dir)
    return builder_class(
        config_name=config_name,
        cache_dir=None if cache_dir is None else str(cache_dir),
        hash=builder_class._mmquant_hash,
        dataset_name=name,
        **kwargs,
    )


def build_dataset(
    name: str,
    config_name: str | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    scripts_dir: str | Path | None = None,
    split: str | None = None,
    num_proc: int | None = None,
    **config_kwargs,
):
    """Prepare builder ``name`` (offline; cached) and return its ``DatasetDict`` (or one ``Dataset`` with
    ``split``)."""
    if num_proc is not None:
        from ..limits import MAX_NUM_PROC, check_int

        check_int(num_proc, "num_proc", 1, MAX_NUM_PROC, "leave it None for one process")
    builder = load_builder(
        name, config_name, data_dir=data_dir, cache_dir=cache_dir, scripts_dir=scripts_dir, **config_kwargs
    )
    builder.download_and_prepare(num_proc=num_proc)
    return builder.as_dataset(split=split)

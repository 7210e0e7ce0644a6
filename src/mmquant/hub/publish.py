"""Publish a trained model to a Hub repo in one call (or one command), with its generated card.

    mmquant publish outputs/optvq-mnist --repo_id you/optvq-mnist   # written by train_optvq.py + mnist_optvq.yaml
    mmquant publish checkpoints/optvq-mnist --repo_id you/optvq-mnist --card_data hub_cards/optvq-mnist.yaml

    from mmquant.hub.publish import publish_folder
    publish_folder("outputs/optvq-mnist", "you/optvq-mnist")

Uploaded in one commit: ``config.json``, the safetensors weights, tokenizer/processor files when present,
``eval_results.json``, the newest sample grid (``samples/*.png``, as ``samples.png``) and ``README.md``: the card
rendered from ``--card_data`` or, for an output without one, from its config and ``eval_results.json``. Readers need
only ``pip install mmquant``: ``import mmquant`` then ``AutoModel.from_pretrained("you/optvq-mnist")``.

The folder is checked first: a missing config or weights file, a weights file that is truncated or not
safetensors, or a config mmquant cannot read is an error naming the file, before anything is uploaded.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["check_model_folder", "export_folder", "publish_folder", "publish_metric", "unfinished_run_hint"]

_WEIGHTS = ("model.safetensors", "diffusion_pytorch_model.safetensors")
_EXTRA_FILES = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "eval_results.json",
)


def unfinished_run_hint(folder: str | Path) -> str:
    """Why ``folder`` has no final model, for an error message: a training run that has not finished (it holds
    ``checkpoint-<step>/`` folders or ``args.json`` but no ``config.json``) or not a ``save_pretrained`` folder."""
    folder = Path(folder)
    steps = sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
    if steps or (folder / "args.json").is_file():
        where = f" (its last checkpoint is checkpoint-{steps[-1]})" if steps else ""
        return (
            f"the training run in {folder} has not finished{where}: the final model is saved when it ends. Let it "
            "finish, or continue it with the same command and `--resume_from_checkpoint latest`, then run this step."
        )
    return "the folder needs the config.json and weights written by save_pretrained (a finished training run)."


def check_model_folder(folder: str | Path) -> list[Path]:
    """The weights files of a ``save_pretrained`` folder, after checking the folder can be loaded; raises
    ``FileNotFoundError`` / ``ValueError`` naming the bad file otherwise."""
    from safetensors import safe_open

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder={str(folder)!r}: not a directory. A training run writes it at the end (its --output_dir; e.g. "
            "`python examples/optvq/train_optvq.py --config examples/optvq/configs/mnist_optvq.yaml` writes "
            "outputs/optvq-mnist): run that step first, or pass a save_pretrained output folder."
        )
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config}: missing; {unfinished_run_hint(folder)}")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except json.JSONDecodeError as error:
        raise ValueError(f"{config}: not valid JSON ({error}).") from None
    if not model_type:
        raise ValueError(f"{config}: no 'model_type'; it was not written by a transformers save_pretrained.")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weights = sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    else:
        weights = [folder / name for name in _WEIGHTS if (folder / name).is_file()]
    if not weights:
        pickles = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = (
            f" (found {pickles}: pickle weights are not published; re-save with safe_serialization)" if pickles else ""
        )
        raise FileNotFoundError(f"{folder}: no model.safetensors{hint}.")
    for path in weights:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (listed in {index.name}).")
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    f.get_slice(key)  # reads each tensor's header entry: a truncated file fails here
                if path.stat().st_size < _expected_size(path):
                    raise ValueError("file shorter than its header says")
        except Exception as error:  # safetensors raises its own error types
            raise ValueError(
                f"{path}: not a readable safetensors file ({error}); it may be truncated or another format."
            ) from None
    return weights


def _expected_size(path: Path) -> int:
    """Header length + header + the end of the last tensor's data, from the safetensors header."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + header_len + max(ends, default=0)


def _newest_sample(folder: Path) -> Path | None:
    samples = sorted((folder / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)
    return samples[-1] if samples else None


def _folder_files(
    folder: Path, repo_id: str | None, card_data: str | Path | None, title: str | None, show_sample: bool = True
) -> tuple[str, dict[str, Path]]:
    """The rendered card and ``{name in the repo: file}`` of a checked model folder (see the module docstring).
    ``show_sample=False``: the card shows a sample only where its card data names one (as ``check_card`` renders)."""
    from .cards import load_card_data, output_card_data, render_model_card

    weights = check_model_folder(folder)
    sample = _newest_sample(folder)
    if card_data is not None:
        data = load_card_data(card_data)
        data["repo_id"] = repo_id or data["repo_id"]
        data["_checkpoint"] = folder
    else:
        if repo_id is None:
            raise ValueError("repo_id: needed when no card_data names it (e.g. repo_id='you/name').")
        data = output_card_data(folder, repo_id, title)
    card = render_model_card(data, sample_image="samples.png" if sample and show_sample else None)
    files = {}
    for path in [folder / "config.json", *weights, *(folder / name for name in _EXTRA_FILES)]:
        if path.is_file():
            files[path.name] = path
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files[index.name] = index
    if sample is not None:
        files["samples.png"] = sample
    return str(card), files


def publish_folder(
    folder: str | Path,
    repo_id: str,
    *,
    card_data: str | Path | None = None,
    title: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
):
    """Upload a checked model folder with its card in one commit; returns the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(folder)
    card, files = _folder_files(folder, repo_id, card_data, title)
    operations = [CommitOperationAdd("README.md", card.encode())]
    operations += [CommitOperationAdd(name, str(path)) for name, path in files.items()]
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return api.create_commit(
        repo_id,
        operations=operations,
        commit_message=commit_message or f"Publish {folder.name} with mmquant",
        revision=revision,
    )


def export_folder(
    folder: str | Path, local_dir: str | Path, *, card_data: str | Path | None = None, repo_id: str | None = None
) -> list[Path]:
    """Write what :func:`publish_folder` would upload into ``local_dir`` instead (how the repository's shipped
    ``checkpoints/<name>/`` are made from a training output); returns the files written. The card is rendered with
    ``card_data``'s results and the model in ``folder``. Files already in ``local_dir`` are replaced; others stay."""
    import shutil

    folder, local_dir = Path(folder), Path(local_dir)
    card, files = _folder_files(folder, repo_id, card_data, None, show_sample=card_data is None)
    local_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, path in files.items():
        shutil.copyfile(path, local_dir / name)
        written.append(local_dir / name)
    (local_dir / "README.md").write_text(card)
    return [*written, local_dir / "README.md"]


def publish_metric(
    name: str,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
):
    """Upload the evaluate module folder ``mmquant/metrics/<name>/`` (module + card) to a Space repo, as the Hub keeps
    evaluate metrics, with the usual widget ``app.py`` and ``requirements.txt`` (``mmquant``). Users load it with
    ``evaluate.load("<repo_id>")`` or, from a downloaded copy, ``evaluate.load("<folder>")``."""
    from huggingface_hub import CommitOperationAdd, HfApi, RepoCard

    from ..resources import package_path

    folder = package_path("metrics", name)
    module = folder / f"{name}.py"
    if not module.is_file():
        known = sorted(p.parent.name for p in folder.parent.glob("*/README.md"))
        raise ValueError(f"name={name!r}: no evaluate module {module}; the metrics are {known}.")
    card = RepoCard.load(folder / "README.md")
    card.data.sdk, card.data.app_file = "gradio", "app.py"  # a Space's metadata, as evaluate's metric Spaces have
    app = (
        "import evaluate\nfrom evaluate.utils import launch_gradio_widget\n\n"
        f'module = evaluate.load("{repo_id}")\nlaunch_gradio_widget(module)\n'
    )
    operations = [
        CommitOperationAdd(module.name, str(module)),
        CommitOperationAdd("README.md", str(card).encode()),
        CommitOperationAdd("app.py", app.encode()),
        CommitOperationAdd("requirements.txt", b"mmquant\n"),
    ]
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    return api.create_commit(
        repo_id,
        operations=operations,
        repo_type="space",
        commit_message=commit_message or f"Publish the {name} metric",
    )

"""The shared base of mmquant's models: strict safetensors loading, config size checks, and ``push_to_hub`` that
publishes a model with its generated mmquant card (instead of transformers' blank one).

The models sit below the hub in the package layering (DESIGN.md, "Decisions"), so this module does not import
:mod:`mmquant.hub`: the card publisher is plugged in by the package root (``import mmquant`` calls
:func:`set_card_publisher` with :func:`mmquant.hub.publish.publish_folder`, as it registers the Auto classes).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from .card_info import ModelCardInfo

__all__ = ["PushToHubWithCardMixin", "check_loading_info", "set_card_publisher"]

_card_publisher: Callable | None = None


def set_card_publisher(publish: Callable) -> None:
    """Plug in the function ``push_to_hub`` uploads a saved model folder with:
    ``publish(folder, repo_id, *, card_data, private, revision, commit_message, token)``."""
    global _card_publisher
    if not callable(publish):
        raise ValueError(f"publish: expected a function like mmquant.hub.publish.publish_folder, got {publish!r}.")
    _card_publisher = publish


class PushToHubWithCardMixin:
    """Put before ``PreTrainedModel`` in a model's bases: ``model.push_to_hub(repo_id)`` saves the model, renders its
    card (model details from the config; ``card_data=hub_cards/<name>.yaml`` adds results and prose) and uploads both
    in one commit through :func:`mmquant.hub.publish.publish_folder`.

    ``from_pretrained`` loads safetensors weights only (``use_safetensors=True`` unless given): a folder holding only
    pickle weights (``pytorch_model.bin``) is refused without reading them, and a truncated or corrupt
    ``model.safetensors`` is an ``OSError`` naming the checkpoint. It is strict by default: a ``config.json`` whose
    ``model_type`` is not this class's, or weights with missing or unexpected tensors, are a ``ValueError`` naming
    them (transformers would only log them and leave the missing ones randomly initialised); ``strict=False``
    accepts that explicitly. Building the model first checks every integer config field against
    :data:`mmquant.limits.MAX_CONFIG_SIZE`. A zoo short name (``"optvq-mnist"``, no ``/``, not a local
    folder) loads the checkpoint shipped inside the package, offline (:func:`mmquant.zoo.resolve`).

    ``card_info`` is what the model card says of the model type (each model folder sets its own, in
    ``card_<name>.py``)."""

    card_info: ModelCardInfo = ModelCardInfo()

    def __init__(self, config, *args, **kwargs):
        from mmquant.limits import check_config_sizes

        # before any weight is allocated: a size of 1e9 is refused naming its field, not deep inside torch
        check_config_sizes(config.to_dict(), type(config).__name__)
        super().__init__(config, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, strict: bool = True, **kwargs):
        from safetensors import SafetensorError

        if not isinstance(strict, bool):
            raise TypeError(f"strict={strict!r}: expected True (refuse weights that do not match) or False.")
        name = str(pretrained_model_name_or_path)
        if isinstance(pretrained_model_name_or_path, str) and "/" not in name and not Path(name).exists():
            from ..zoo_catalog import resolve

            pretrained_model_name_or_path = resolve(name)
        kwargs.setdefault("use_safetensors", True)
        if strict and kwargs.get("config") is None and not args:  # AutoModel passes the config it dispatched on
            _check_model_type(cls, pretrained_model_name_or_path, kwargs)
        want_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except SafetensorError as err:
            raise OSError(
                f"pretrained_model_name_or_path={name!r}: the safetensors weights are "
                f"truncated or corrupt ({err}); save the model again or re-download it."
            ) from err
        if strict:
            check_loading_info(cls, name, info)
        return (model, info) if want_info else model

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        card_data: str | Path | None = None,
        **kwargs,
    ):
        if create_pr:
            raise NotImplementedError("create_pr=True: mmquant publishes to a branch instead; pass revision=<branch>.")
        if _card_publisher is None:
            raise RuntimeError("push_to_hub: no card publisher is set; `import mmquant` sets it (set_card_publisher).")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / repo_id.split("/")[-1]
            self.save_pretrained(folder, **kwargs)
            return _card_publisher(
                folder,
                repo_id,
                card_data=card_data,
                private=private,
                revision=revision,
                commit_message=commit_message,
                token=token,
            )


_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "subfolder")


def _check_model_type(cls, pretrained_model_name_or_path, kwargs: dict) -> None:
    """``ValueError`` when the checkpoint's ``config.json`` names another ``model_type`` than ``cls`` loads."""
    from transformers import PretrainedConfig

    expected = getattr(cls.config_class, "model_type", None)
    try:
        config, _ = PretrainedConfig.get_config_dict(
            pretrained_model_name_or_path, **{k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        )
    except (OSError, ValueError):  # no or unreadable config: transformers' own loading says so, in its words
        return
    found = config.get("model_type") if isinstance(config, dict) else None
    if expected and found and found != expected:
        raise ValueError(
            f"pretrained_model_name_or_path={str(pretrained_model_name_or_path)!r}: its config.json has "
            f"model_type={found!r}, but {cls.__name__} loads {expected!r} checkpoints; load it with "
            f"AutoModel.from_pretrained (which picks the class of {found!r}), or pass strict=False to force it."
        )


def _names(keys, most: int = 10) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return f"{keys[:most]}{more}"


def check_loading_info(cls, name: str, info: dict) -> None:
    """``ValueError`` naming the missing and unexpected tensors of a load (none may be left randomly initialised)."""
    missing, unexpected = set(info.get("missing_keys") or ()), set(info.get("unexpected_keys") or ())
    if not (missing or unexpected):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing from the checkpoint (they would stay random): {_names(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors in the checkpoint: {_names(unexpected)}")
    raise ValueError(
        f"pretrained_model_name_or_path={name!r}: the weights do not match {cls.__name__}: {'; '.join(parts)}. "
        "Load it with the class it was saved from (AutoModel.from_pretrained), re-save the checkpoint, or pass "
        "strict=False to accept randomly initialised tensors."
    )

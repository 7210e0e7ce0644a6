"""``push_to_hub`` that publishes a model with its generated mmquant card (instead of transformers' blank one)."""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["PushToHubWithCardMixin"]


class PushToHubWithCardMixin:
    """Put before ``PreTrainedModel`` in a model's bases: ``model.push_to_hub(repo_id)`` saves the model, renders its
    card (model details from the config; ``card_data=hub_cards/<name>.yaml`` adds results and prose) and uploads both
    in one commit through :func:`mmquant.hub.publish.publish_folder`.

    ``from_pretrained`` loads safetensors weights only (``use_safetensors=True`` unless given): a folder holding only
    pickle weights (``pytorch_model.bin``) is refused without reading them, and a truncated or corrupt
    ``model.safetensors`` is an ``OSError`` naming the checkpoint. A zoo short name (``"optvq-mnist"``, no ``/``,
    not a local folder) loads the checkpoint shipped inside the package, offline (:func:`mmquant.zoo.resolve`)."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        from safetensors import SafetensorError

        name = pretrained_model_name_or_path
        if isinstance(name, str) and "/" not in name and not Path(name).exists():
            from ..zoo import resolve

            pretrained_model_name_or_path = resolve(name)
        kwargs.setdefault("use_safetensors", True)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except SafetensorError as err:
            raise OSError(
                f"pretrained_model_name_or_path={str(pretrained_model_name_or_path)!r}: the safetensors weights are "
                f"truncated or corrupt ({err}); save the model again or re-download it."
            ) from err

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
        from .publish import publish_folder

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / repo_id.split("/")[-1]
            self.save_pretrained(folder, **kwargs)
            return publish_folder(
                folder,
                repo_id,
                card_data=card_data,
                private=private,
                revision=revision,
                commit_message=commit_message,
                token=token,
            )

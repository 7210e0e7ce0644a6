"""``push_to_hub`` that publishes a model with its generated mmquant card (instead of transformers' blank one)."""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["PushToHubWithCardMixin"]


class PushToHubWithCardMixin:
    """Put before ``PreTrainedModel`` in a model's bases: ``model.push_to_hub(repo_id)`` saves the model, renders its
    card (model details from the config; ``card_data=hub_cards/<name>.yaml`` adds results and prose) and uploads both
    in one commit through :func:`mmquant.hub.publish.publish_folder`."""

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

"""What a model card says of every checkpoint of a model type, unless its card data says otherwise.

Each model folder owns its card details in ``models/<name>/card_<name>.py`` (a :class:`ModelCardInfo`, set as the
``card_info`` attribute of the model's ``<Prefix>PreTrainedModel``); :mod:`mmquant.hub.cards` reads them through
:func:`mmquant.models.registry.card_info`, so adding a model touches only its folder and the registry. No torch here:
card details are read from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelCardInfo", "parameter_count"]


@dataclass(frozen=True)
class ModelCardInfo:
    """The card details of a model type.

    Args:
        description (`str`): what the model is, the card's opening prose.
        task (`tuple[str, str]`): the Hub task type and a task name, for the ``model-index`` results.
        tags (`tuple[str, ...]`): the card's Hub tags.
        limitations (`str`): the card's limitations section.
        citation (`str`): the BibTeX entry of the paper.
        citation_from (`str`, *optional*): the ``model_type`` whose paper this model is cited with (when it has no
            paper of its own, e.g. the Caption MNIST judge and MXQ-VAE); used when ``citation`` is empty.
    """

    description: str = ""
    task: tuple[str, str] = ("image-to-image", "image reconstruction")
    tags: tuple[str, ...] = ()
    limitations: str = ""
    citation: str = ""
    citation_from: str | None = None

    def details(self, config, repo_id: str) -> tuple[list[tuple[str, str]], str]:
        """Model-details rows (beyond architecture and parameter count) and a usage snippet for ``repo_id``."""
        usage = f'import mmquant\nfrom transformers import AutoModel\n\nmodel = AutoModel.from_pretrained("{repo_id}")'
        return [], usage


def parameter_count(model) -> str:
    """The card's parameter count of ``model``, with thousands separators."""
    return f"{sum(p.numel() for p in model.parameters()):,}"

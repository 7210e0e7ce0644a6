"""Render or check the dataset cards (:mod:`mmquant.data.dataset_card`) from the command line:

python -m mmquant.hub.dataset_cards render src/mmquant/dataset_scripts/caption_mnist/card_data.yaml
python -m mmquant.hub.dataset_cards check src/mmquant/dataset_scripts/*/card_data.yaml
"""

from __future__ import annotations

from ..data.dataset_card import check_dataset_card, load_dataset_card_data, readme_path, render_dataset_card

__all__ = ["check_dataset_card", "load_dataset_card_data", "main", "render_dataset_card"]


def main(argv=None) -> int:
    from .cards import run_card_commands

    return run_card_commands(argv, __doc__, render_dataset_card, check_dataset_card, readme_path)


if __name__ == "__main__":
    raise SystemExit(main())

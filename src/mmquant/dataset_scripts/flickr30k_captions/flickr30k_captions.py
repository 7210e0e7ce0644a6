"""Flickr30k with the Karpathy split, as a ``datasets`` builder run directly on a local folder (no network):

    from mmquant.data.builders import build_dataset
    ds = build_dataset("flickr30k_captions", data_dir="/data/flickr30k")   # train / validation / test

Reading lives in ``mmquant.data.caption_folders.read_karpathy_split``; this file is only the ``datasets`` glue.
"""

from __future__ import annotations

import dataclasses

import datasets

from mmquant.data.caption_folders import KARPATHY_CITATION, KARPATHY_LAYOUTS, read_karpathy_split

_CITATION = (
    """\
@article{young2014image,
    title   = {From Image Descriptions to Visual Denotations: New Similarity Metrics for Semantic Inference over
               Event Descriptions},
    author  = {Peter Young and Alice Lai and Micah Hodosh and Julia Hockenmaier},
    journal = {Transactions of the Association for Computational Linguistics},
    volume  = {2},
    pages   = {67--78},
    year    = {2014}
}
"""
    + KARPATHY_CITATION
)

_DESCRIPTION = f"""\
Flickr30k (31,783 Flickr images, five captions each) in the Karpathy & Fei-Fei (2015) split: train 29,000 /
validation 1,014 / test 1,000 images, one row per image with all its captions. Expected under data_dir:
{KARPATHY_LAYOUTS["flickr30k"]["layout"]}
"""


@dataclasses.dataclass
class Flickr30kCaptionsConfig(datasets.BuilderConfig):
    """``include_restval``: put images of split ``restval`` into train (the Flickr30k file has none; kept for the
    same behaviour as ``coco_captions``)."""

    include_restval: bool = True


class Flickr30kCaptions(datasets.GeneratorBasedBuilder):
    """Flickr30k captions, Karpathy split."""

    BUILDER_CONFIG_CLASS = Flickr30kCaptionsConfig
    BUILDER_CONFIGS = [Flickr30kCaptionsConfig(name="default", version=datasets.Version("1.0.0"))]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(
                {
                    "image": datasets.Image(),
                    "captions": datasets.List(datasets.Value("string")),
                    "image_id": datasets.Value("string"),
                    "file_name": datasets.Value("string"),
                    "karpathy_split": datasets.Value("string"),
                }
            ),
            homepage="https://shannon.cs.illinois.edu/DenotationGraph/",
            license="Images: Flickr Terms of Use (non-commercial research and educational use, per the Flickr30k "
            "request form); captions: Young et al. 2014, research use; Karpathy split: BSD.",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError(
                "data_dir is required: build_dataset('flickr30k_captions', data_dir='/path/to/flickr30k') with the "
                f"folder holding:\n{KARPATHY_LAYOUTS['flickr30k']['layout']}"
            )
        # Read and check everything before any example is written (errors are not wrapped by datasets then).
        splits = read_karpathy_split(
            self.config.data_dir, dataset="flickr30k", include_restval=self.config.include_restval
        )
        return [datasets.SplitGenerator(name=name, gen_kwargs={"rows": rows}) for name, rows in splits.items()]

    def _generate_examples(self, rows: list[dict]):
        for row in rows:
            yield row["image_id"], row

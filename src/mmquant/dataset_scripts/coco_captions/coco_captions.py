"""COCO captions (official 2014 / 2017 annotations, or the Karpathy split) as a ``datasets`` builder run directly
on a local folder (no network):

    from mmquant.data.builders import build_dataset
    ds = build_dataset("coco_captions", "2014", data_dir="/data/coco")        # train / validation
    ds = build_dataset("coco_captions", "2017", data_dir="/data/coco")
    ds = build_dataset("coco_captions", "karpathy", data_dir="/data/coco")    # train (+restval) / validation / test
    ds = build_dataset("coco_captions", "karpathy", data_dir="/data/coco", include_restval=False)

Reading lives in ``mmquant.data.caption_folders`` (``read_coco_captions``, ``read_karpathy_split``); this file is
only the ``datasets`` glue.
"""

from __future__ import annotations

import dataclasses

import datasets

from mmquant.data.caption_folders import KARPATHY_CITATION, KARPATHY_LAYOUTS, read_coco_captions, read_karpathy_split

_CITATION = (
    """\
@inproceedings{lin2014microsoft,
    title     = {Microsoft {COCO}: Common Objects in Context},
    author    = {Tsung-Yi Lin and Michael Maire and Serge Belongie and James Hays and Pietro Perona and Deva Ramanan
                 and Piotr Doll{\\'a}r and C. Lawrence Zitnick},
    booktitle = {European Conference on Computer Vision (ECCV)},
    pages     = {740--755},
    year      = {2014}
}
@article{chen2015microsoft,
    title   = {Microsoft {COCO} Captions: Data Collection and Evaluation Server},
    author  = {Xinlei Chen and Hao Fang and Tsung-Yi Lin and Ramakrishna Vedantam and Saurabh Gupta and Piotr
               Doll{\\'a}r and C. Lawrence Zitnick},
    journal = {arXiv preprint arXiv:1504.00325},
    year    = {2015}
}
"""
    + KARPATHY_CITATION
)

_DESCRIPTION = f"""\
COCO captions: about five human captions per image, one row per image with all its captions. Config `2014`: the
official train2014 (82,783 images) / val2014 (40,504) annotations, expected under data_dir as
annotations/captions_train2014.json, annotations/captions_val2014.json, train2014/, val2014/. Config `2017`:
train2017 (118,287) / val2017 (5,000), same layout with 2017. Config `karpathy`: the Karpathy & Fei-Fei (2015)
split of the 2014 images (5,000 validation, 5,000 test; train = 82,783 train + 30,504 `restval` images unless
include_restval=False), expected under data_dir as:
{KARPATHY_LAYOUTS["coco"]["layout"]}
"""


@dataclasses.dataclass
class CocoCaptionsConfig(datasets.BuilderConfig):
    """``year`` of the official annotations, or ``karpathy=True`` for ``dataset_coco.json``; ``include_restval``
    puts the Karpathy ``restval`` images into train (True, the usual 113,287-image train set) or leaves them out."""

    year: str = "2014"
    karpathy: bool = False
    include_restval: bool = True


class CocoCaptions(datasets.GeneratorBasedBuilder):
    """COCO captions: official 2014 / 2017 annotations and the Karpathy split."""

    BUILDER_CONFIG_CLASS = CocoCaptionsConfig
    BUILDER_CONFIGS = [
        CocoCaptionsConfig(name="2014", version=datasets.Version("1.0.0"), year="2014"),
        CocoCaptionsConfig(name="2017", version=datasets.Version("1.0.0"), year="2017"),
        CocoCaptionsConfig(name="karpathy", version=datasets.Version("1.0.0"), karpathy=True),
    ]
    DEFAULT_CONFIG_NAME = "2014"

    def _info(self) -> datasets.DatasetInfo:
        features = {
            "image": datasets.Image(),
            "captions": datasets.List(datasets.Value("string")),
            "image_id": datasets.Value("string"),
            "file_name": datasets.Value("string"),
        }
        if self.config.karpathy:
            features["karpathy_split"] = datasets.Value("string")
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(features),
            homepage="https://cocodataset.org/",
            license="COCO annotations: CC BY 4.0; images: Flickr Terms of Use (each image under its own license); "
            "Karpathy split: BSD (https://cs.stanford.edu/people/karpathy/deepimagesent/).",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError(
                f"data_dir is required: build_dataset('coco_captions', {self.config.name!r}, "
                "data_dir='/path/to/coco') with the COCO folder; the files expected are listed in this builder's "
                "description (annotations/captions_train2014.json ..., or dataset_coco.json for 'karpathy')."
            )
        # Read and check everything before any example is written (errors are not wrapped by datasets then).
        if self.config.karpathy:
            splits = read_karpathy_split(
                self.config.data_dir, dataset="coco", include_restval=self.config.include_restval
            )
        else:
            splits = read_coco_captions(self.config.data_dir, year=self.config.year)
        return [datasets.SplitGenerator(name=name, gen_kwargs={"rows": rows}) for name, rows in splits.items()]

    def _generate_examples(self, rows: list[dict]):
        for row in rows:
            yield row["image_id"], row

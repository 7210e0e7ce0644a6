"""CUB-200-2011 with the ten captions per image of Reed et al. (2016), and its MXQ-VAE Degree set, as a
``datasets`` builder run directly on a local folder (no network):

    from mmquant.data.builders import build_dataset
    ds = build_dataset("cub200_captions", data_dir="/data/birds")                      # 150/50 classes
    ds = build_dataset("cub200_captions", data_dir="/data/birds", split_by="images")   # official image split
    ds = build_dataset("cub200_captions", "degree", data_dir="/data/birds", num_slots=4, seed=0)

The configs, features and reading are shared with the other ten-caption dataset in
``mmquant.data.ten_caption_builder``; this file names the dataset.
"""

from __future__ import annotations

from mmquant.data.ten_caption_builder import TenCaptionBuilder

_CITATION = """\
@techreport{wah2011caltech,
    title       = {The Caltech-UCSD Birds-200-2011 Dataset},
    author      = {Catherine Wah and Steve Branson and Peter Welinder and Pietro Perona and Serge Belongie},
    institution = {California Institute of Technology},
    number      = {CNS-TR-2011-001},
    year        = {2011}
}
"""

_DESCRIPTION = """\
CUB-200-2011 (11,788 images of 200 bird species) with ten crowd-sourced captions per image (Reed et al. 2016).
`split_by="classes"` (default; the text-to-image convention of StackGAN, AttnGAN, LAViTeR and MXQ-VAE): train =
the 150 classes of trainvalclasses.txt (8,855 images), test = the 50 classes of testclasses.txt (2,933 images);
`split_by="images"`: the official CUB image split of CUB_200_2011/train_test_split.txt (5,994 / 5,794 images).
Config `default`: one row per image with its captions. Config `degree`: the MXQ-VAE Degree set of the test images:
for each test image, its first caption with at least `num_slots` colour words gives one row per degree
num_slots..0, where num_slots - degree of those colour words are replaced by a different random colour
(deterministic given `seed`); images without such a caption have no Degree rows.
"""


class Cub200Captions(TenCaptionBuilder):
    """CUB-200-2011 + Reed et al. captions (``default``) and the MXQ-VAE Degree set (``degree``)."""

    DATASET = "cub200"
    DESCRIPTION = _DESCRIPTION
    CITATION = _CITATION
    HOMEPAGE = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
    LICENSE = (
        "CUB-200-2011 images: Flickr, for non-commercial research and educational purposes only; "
        "captions of Reed et al. 2016 (https://github.com/reedscot/cvpr2016), research use."
    )

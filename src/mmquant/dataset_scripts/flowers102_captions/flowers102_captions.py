"""Oxford Flowers-102 with the ten captions per image of Reed et al. (2016), and its MXQ-VAE Degree set, as a
``datasets`` builder run directly on a local folder (no network):

    from mmquant.data.builders import build_dataset
    ds = build_dataset("flowers102_captions", data_dir="/data/flowers")             # train/test, class-disjoint
    ds = build_dataset("flowers102_captions", "degree", data_dir="/data/flowers")   # test only, degrees 4..0
    ds = build_dataset("flowers102_captions", "degree", data_dir="/data/flowers", num_slots=2, seed=1)

The configs, features and reading are shared with the other ten-caption dataset in
``mmquant.data.ten_caption_builder``; this file names the dataset.
"""

from __future__ import annotations

from mmquant.data.ten_caption_builder import TenCaptionBuilder

_CITATION = """\
@inproceedings{nilsback2008automated,
    title     = {Automated Flower Classification over a Large Number of Classes},
    author    = {Maria-Elena Nilsback and Andrew Zisserman},
    booktitle = {Indian Conference on Computer Vision, Graphics and Image Processing},
    year      = {2008}
}
"""

_DESCRIPTION = """\
Oxford Flowers-102 (8,189 images of 102 flower classes) with ten crowd-sourced captions per image (Reed et al.
2016), split by class as in text-to-image work (StackGAN, AttnGAN, MXQ-VAE): train = the 82 classes of
trainvalclasses.txt, test = the 20 classes of testclasses.txt. Config `default`: one row per image with its
captions. Config `degree`: the MXQ-VAE Degree set of the test images: for each test image, its first caption with
at least `num_slots` colour words gives one row per degree num_slots..0, where num_slots - degree of those colour
words are replaced by a different random colour (deterministic given `seed`); images without such a caption have
no Degree rows.
"""


class Flowers102Captions(TenCaptionBuilder):
    """Oxford Flowers-102 + Reed et al. captions (``default``) and the MXQ-VAE Degree set (``degree``)."""

    DATASET = "flowers102"
    DESCRIPTION = _DESCRIPTION
    CITATION = _CITATION
    HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    LICENSE = (
        "No license stated: images of the Oxford 102 Flowers dataset (VGG, research use); captions of "
        "Reed et al. 2016 (https://github.com/reedscot/cvpr2016), research use."
    )

"""Caption MNIST and its Degree sets (MXQ-VAE), as a ``datasets`` builder run directly (no network):

    from mmquant.data.builders import build_dataset
    ds = build_dataset("caption_mnist", "quad4")            # or: mmquant-data build caption_mnist --config quad4 ...
    ds = build_dataset("caption_mnist", "quad4_degree")

Configs ``single`` and ``quad1``-``quad4`` give train/validation/test pairs; ``quad1_degree``-``quad4_degree`` give
the Degree rows (one per degree K..0) of the first ``num_examples`` QuadK pairs of each of their splits. Any config
field can be overridden: ``build_dataset("caption_mnist", "quad2", seed=1, num_examples={"train": 1000})``. The
generation itself lives in ``mmquant.data.caption_mnist`` (and the caption language in
``mmquant.data.caption_grammar``), so metrics can parse captions with the same grammar.
"""

from __future__ import annotations

import dataclasses

import datasets

from mmquant.data.caption_mnist import (
    DEFAULT_COLORS,
    check_options,
    generate_caption_mnist,
    generate_caption_mnist_degree,
)
from mmquant.limits import check_seed

_CITATION = """\
@inproceedings{lee2022unconditional,
    title     = {Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
    author    = {Hyungyung Lee and Sungjin Park and Joonseok Lee and Edward Choi},
    booktitle = {NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
    year      = {2022}
}
@article{lecun1998gradient,
    title   = {Gradient-based learning applied to document recognition},
    author  = {Yann LeCun and L{\\'e}on Bottou and Yoshua Bengio and Patrick Haffner},
    journal = {Proceedings of the IEEE},
    volume  = {86},
    number  = {11},
    pages   = {2278--2324},
    year    = {1998}
}
"""

_DESCRIPTION = """\
Caption MNIST (MXQ-VAE): image-text pairs of coloured MNIST digits placed in the quadrants of a 2x2 canvas with a
caption naming each digit's colour and position ("The green 0 is on the upper right, and the top left 8 is red.").
`single` holds one digit alone, `quadK` K digits in K distinct quadrants. The `quadK_degree` configs are the Degree
sets: for each QuadK pair, rows of degree d = K..0 where K - d of the described objects have both their colour and
digit replaced in the caption only, with the original caption and which object slots changed. Generated
deterministically from MNIST (the digits of each split come only from the same MNIST split) given a seed.
"""

_MNIST_SIZED = {"train": 50000, "validation": 10000, "test": 10000}  # one pair per digit image of each split
_OBJECT = {
    "position": datasets.Value("string"),
    "digit": datasets.Value("int8"),
    "color": datasets.Value("string"),
    "mnist_index": datasets.Value("int32"),
}


@dataclasses.dataclass
class CaptionMnistConfig(datasets.BuilderConfig):
    """``num_objects`` digits per canvas (``single``: one, scaled up), ``num_examples`` pairs per split (Degree: base
    pairs per split, each giving K+1 rows), ``image_size`` pixels, ``colors`` from
    ``mmquant.data.caption_mnist.COLORS`` and the ``seed`` every example is derived from; ``mnist_source`` and
    ``mnist_root`` as in ``mmquant.data.mnist``."""

    num_objects: int = 1
    single: bool = False
    degree: bool = False
    num_examples: dict = dataclasses.field(default_factory=lambda: dict(_MNIST_SIZED))
    image_size: int = 64
    colors: tuple = DEFAULT_COLORS
    seed: int = 0
    mnist_source: str = "auto"
    mnist_root: str | None = None


def _configs() -> list[CaptionMnistConfig]:
    version = datasets.Version("1.0.0")
    configs = [CaptionMnistConfig(name="single", version=version, num_objects=1, single=True)]
    configs += [CaptionMnistConfig(name=f"quad{k}", version=version, num_objects=k) for k in range(1, 5)]
    configs += [
        CaptionMnistConfig(
            name=f"quad{k}_degree",
            version=version,
            num_objects=k,
            degree=True,
            num_examples={"validation": 1000, "test": 2000},
        )
        for k in range(1, 5)
    ]
    return configs


class CaptionMnist(datasets.GeneratorBasedBuilder):
    """Caption MNIST (single, quad1-quad4) and its Degree sets."""

    BUILDER_CONFIG_CLASS = CaptionMnistConfig
    BUILDER_CONFIGS = _configs()
    DEFAULT_CONFIG_NAME = "quad2"

    def _info(self) -> datasets.DatasetInfo:
        features = {
            "image": datasets.Image(),
            "caption": datasets.Value("string"),
            "objects": datasets.List(_OBJECT),
            "mnist_split": datasets.Value("string"),
        }
        if self.config.degree:
            features |= {
                "original_caption": datasets.Value("string"),
                "degree": datasets.Value("int8"),
                "num_objects": datasets.Value("int8"),
                "caption_objects": datasets.List(_OBJECT),
                "changed": datasets.List(datasets.Value("bool")),
            }
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(features),
            homepage="https://github.com/ttumyche/MXQ-VAE",
            license="CC BY-SA 3.0 (MNIST)",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        unknown = set(self.config.num_examples) - {"train", "validation", "test"}
        if unknown:
            raise ValueError(f"num_examples: unknown splits {sorted(unknown)}; use train, validation and/or test.")
        for split, n in self.config.num_examples.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"num_examples[{split!r}]={n!r}: expected a positive integer number of examples.")
        c = self.config
        if not isinstance(c.seed, int) or isinstance(c.seed, bool):
            raise ValueError(f"seed={c.seed!r}: expected an integer.")
        check_seed(c.seed)  # numpy seeds are 32-bit unsigned: a negative or huge one is named here
        check_options(c.num_objects, c.single and not c.degree, c.image_size, c.colors)  # fail before generating
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "num_examples": n})
            for split, n in self.config.num_examples.items()
        ]

    def _generate_examples(self, split: str, num_examples: int):
        c = self.config
        common = dict(
            seed=c.seed,
            image_size=c.image_size,
            colors=tuple(c.colors),
            mnist_source=c.mnist_source,
            mnist_root=c.mnist_root,
        )
        if c.degree:
            rows = generate_caption_mnist_degree(split, num_examples, c.num_objects, **common)
        else:
            rows = generate_caption_mnist(split, num_examples, c.num_objects, single=c.single, **common)
        yield from enumerate(rows)

"""Codebook usage and perplexity as an evaluate module.

``evaluate.load("path/to/mmquant/src/mmquant/metrics/codebook_usage")``: a thin wrapper around
``mmquant.metrics.functional.codebook_usage``.
"""

import datasets
import evaluate
import torch

from mmquant.metrics.functional import codebook_usage

_DESCRIPTION = """How much of a codebook a set of token sequences uses: the fraction of codes used at least once
over the whole set (not per batch), the perplexity of the code histogram (exp of its entropy), and the number of
dead codes. Sequences may have different lengths; all their tokens are counted together."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): code indices, one list per example (e.g. the flattened tokens of an
        image).
    codebook_size (`int`, required): number of codes K; every index must be in [0, K).
Returns:
    usage (`float`): fraction of the K codes used at least once.
    perplexity (`float`): exp of the entropy of the code histogram (K when all codes are used equally).
    dead_codes (`int`): codes never used.
    num_tokens (`int`): tokens counted.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/codebook_usage")  # doctest: +SKIP
    >>> metric.compute(predictions=[[0, 1], [1, 3]], codebook_size=4)  # doctest: +SKIP
    {'usage': 0.75, 'perplexity': 2.828..., 'dead_codes': 1, 'num_tokens': 4}
"""

_CITATION = """@article{zhang2024preventing,
  title={Preventing Local Pitfalls in Vector Quantization via Optimal Transport},
  author={Borui Zhang and Wenzhao Zheng and Jie Zhou and Jiwen Lu},
  journal={arXiv preprint arXiv:2412.15195},
  year={2024}
}"""


def _check_integer_indices(predictions) -> None:
    for i, tokens in enumerate(predictions if predictions is not None else []):
        values = torch.as_tensor(tokens)
        if values.is_floating_point() and not torch.equal(values, values.round()):
            raise ValueError(f"predictions[{i}]: expected integer code indices, got {tokens!r}.")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CodebookUsage(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))}),
        )

    def add_batch(self, *, predictions=None, **kwargs):
        """Add a batch of code sequences (integers; a fractional value is an error, not truncated)."""
        _check_integer_indices(predictions)  # before evaluate's int64 features would truncate 0.5 to 0
        return super().add_batch(predictions=predictions, **kwargs)

    def add(self, *, prediction=None, **kwargs):
        """Add one code sequence (integers; a fractional value is an error, not truncated)."""
        _check_integer_indices(None if prediction is None else [prediction])
        return super().add(prediction=prediction, **kwargs)

    def _compute(self, predictions, codebook_size: int = None):
        if codebook_size is None:
            raise ValueError("codebook_size: required, expected the number of codes K (e.g. codebook_size=1024).")
        flat = torch.tensor([i for tokens in predictions for i in tokens], dtype=torch.long)
        return codebook_usage(flat, codebook_size)

"""Modified (clipped) unigram precision of generated captions (MXQ-VAE Table 3) as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/modified_unigram_precision")``.

A thin wrapper around ``mmquant.metrics.caption_similarity.modified_unigram_precision``.
"""

import datasets
import evaluate

from mmquant.metrics.caption_similarity import modified_unigram_precision

_DESCRIPTION = """Modified unigram precision of generated captions (MXQ-VAE, Table 3, Flowers and CUB; our reading of
the protocol): BLEU's clipped unigram precision (Papineni et al. 2002, sec. 2.1.1). Each word of a generated caption
counts as a match at most as often as it occurs in any single one of its reference captions (e.g. the real captions of
the training images nearest to the generated image). Words are lowercased, punctuation dropped. Reported at corpus
level (all clipped matches over all words, BLEU's p_1) and as the mean of the per-caption precisions."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the generated captions.
    references (`list[list[str]]`): for each generated caption, its reference captions (at least one).
    tokenizer (`Callable[[str], list[str]]`, optional): splits a caption into words; defaults to
        `mmquant.metrics.caption_similarity.caption_words` (lowercased, punctuation dropped).
Returns:
    modified_unigram_precision (`float`): corpus-level clipped unigram precision, in [0, 1].
    mean_sentence_precision (`float`): mean over captions of their clipped unigram precision, in [0, 1].
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/modified_unigram_precision")  # doctest: +SKIP
    >>> metric.compute(
    ...     predictions=["the the the the", "a red bird"],
    ...     references=[["the cat"], ["a small red bird", "a bird"]],
    ... )  # doctest: +SKIP
    {'modified_unigram_precision': 0.5714285714285714, 'mean_sentence_precision': 0.625}
"""

_CITATION = """@inproceedings{papineni2002bleu,
  title={BLEU: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={ACL},
  year={2002}
}
@inproceedings{lee2022unconditional,
  title={Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
  author={Lee, Hyungyung and Park, Sungjin and Lee, Joonseok and Choi, Edward},
  booktitle={NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
  year={2022}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ModifiedUnigramPrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, tokenizer=None):
        return modified_unigram_precision(predictions, references, tokenizer=tokenizer)

"""Sentence similarity top-k of generated captions (MXQ-VAE Table 3) as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/sentence_similarity")``.

A thin wrapper around ``mmquant.metrics.caption_similarity.sentence_similarity``.
"""

import datasets
import evaluate

from mmquant.metrics.caption_similarity import load_sentence_embedder, sentence_similarity

_DESCRIPTION = """Sentence similarity top-k of generated captions (MXQ-VAE, Table 3, Flowers and CUB; our reading of
the protocol): for each generated caption, the mean cosine similarity between its sentence embedding and those of its
first k reference captions, ranked nearest first (e.g. the captions of the k real training images nearest to the
generated image), averaged over the captions; k in (1, 5, 10). With rank_by="similarity", the k references most
similar to the caption instead. The default embedder is WordLlama l2_supercat (256-d static embeddings shipped in the
wordllama wheel, `pip install 'mmquant[metrics]'`), not the paper's model: numbers are not comparable to Table 3."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the generated captions.
    references (`list[list[str]]`): for each generated caption, its reference captions ranked nearest first (at
        least max(k_values) each).
    embedder (callable `list[str] -> (N, D)`, or a local model folder path, optional): the sentence embedder;
        defaults to the one given to `evaluate.load(..., embedder=...)`, else WordLlama l2_supercat.
    k_values (`list[int]`, defaults to `[1, 5, 10]`): the k of the top-k.
    rank_by (`str`, defaults to `"given"`): `"given"` (the first k references as ordered) or `"similarity"` (the k
        references most similar to the caption).
    batch_size (`int`, defaults to 256): texts per embedder call.
Returns:
    sentence_similarity@<k> (`float`): mean over captions of the mean cosine with its top-k references.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/sentence_similarity")  # doctest: +SKIP
    >>> metric.compute(predictions=captions, references=nearest_captions)  # doctest: +SKIP
    {'sentence_similarity@1': 0.93, 'sentence_similarity@5': 0.91, 'sentence_similarity@10': 0.90}
"""

_CITATION = """@inproceedings{lee2022unconditional,
  title={Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer},
  author={Lee, Hyungyung and Park, Sungjin and Lee, Joonseok and Choi, Edward},
  booktitle={NeurIPS 2022 Workshop on Vision Transformers: Theory and Applications},
  year={2022}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SentenceSimilarity(evaluate.Metric):
    def __init__(self, embedder=None, **kwargs):
        super().__init__(**kwargs)
        self._embedder_source = embedder
        self._embedder = None

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

    def _get_embedder(self, embedder):
        if embedder is not None:
            return load_sentence_embedder(embedder)
        if self._embedder is None:  # the load-time embedder (or the default), loaded once
            self._embedder = load_sentence_embedder(self._embedder_source)
        return self._embedder

    def _compute(self, predictions, references, embedder=None, k_values=(1, 5, 10), rank_by="given", batch_size=256):
        return sentence_similarity(
            predictions,
            references,
            self._get_embedder(embedder),
            k_values=tuple(k_values) if isinstance(k_values, list) else k_values,
            rank_by=rank_by,
            batch_size=batch_size,
        )

"""Cross-modal retrieval Recall@K and median rank as an evaluate module:
``evaluate.load("path/to/mmquant/src/mmquant/metrics/recall_at_k")``.

A thin wrapper around ``mmquant.metrics.retrieval.ranks_from_scores`` and ``recall_at_k``.
"""

import datasets
import evaluate
import torch

from mmquant.metrics.retrieval import ranks_from_scores, recall_at_k

_DESCRIPTION = """Recall@K of a retrieval run (VSE++ / SCAN / jWAE protocol): each prediction is one query's scores
over the whole gallery, each reference the gallery indices relevant to it (several for an image whose five captions
are the gallery, as on COCO and Flickr30k). A query's rank is the number of non-relevant items scoring at least as
high as its best relevant item (ties count against the model). Returns the percent of queries ranked below K, and the
1-based median and mean rank."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): for each query, its similarity to every gallery item (same gallery for all).
    references (`list[list[int]]`): for each query, the indices of its relevant gallery items (at least one).
    k_values (`list[int]`, defaults to `[1, 5, 10]`): the K of Recall@K.
Returns:
    recall@<k> (`float`): percent of queries whose best relevant item is in the top K, for each K.
    median_rank (`float`), mean_rank (`float`): 1-based ranks of the best relevant items.
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("src/mmquant/metrics/recall_at_k")  # doctest: +SKIP
    >>> metric.compute(
    ...     predictions=[[0.9, 0.1, 0.3], [0.2, 0.8, 0.9]],
    ...     references=[[0], [0, 1]],
    ...     k_values=[1, 2],
    ... )  # doctest: +SKIP
    {'recall@1': 50.0, 'recall@2': 100.0, 'median_rank': 1.0, 'mean_rank': 1.5}
"""

_CITATION = """@inproceedings{faghri2018vse,
  title={VSE++: Improving Visual-Semantic Embeddings with Hard Negatives},
  author={Faghri, Fartash and Fleet, David J. and Kiros, Jamie Ryan and Fidler, Sanja},
  booktitle={British Machine Vision Conference (BMVC)},
  year={2018}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RecallAtK(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
            ),
        )

    def _compute(self, predictions, references, k_values=(1, 5, 10)):
        sizes = {len(row) for row in predictions}
        if len(sizes) != 1:
            raise ValueError(
                f"predictions: every query must score the same gallery; got rows of sizes {sorted(sizes)}."
            )
        gallery = sizes.pop()
        scores = torch.tensor(predictions, dtype=torch.float64)
        mask = torch.zeros(scores.shape, dtype=torch.bool)
        for q, items in enumerate(references):
            for item in items:
                if not 0 <= item < gallery:
                    raise ValueError(f"references[{q}]: index {item} is not a gallery index in [0, {gallery}).")
                mask[q, item] = True
        return recall_at_k(ranks_from_scores(scores, mask), tuple(int(k) for k in k_values))

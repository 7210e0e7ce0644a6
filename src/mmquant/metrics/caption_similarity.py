"""Caption metrics of generated image-text pairs on Flowers and CUB (MXQ-VAE, Table 3): modified unigram precision
and sentence similarity top-1/5/10.

Lee et al., "Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer" (arXiv:2204.07537; reference
code github.com/ttumyche/MXQ-VAE, which ships no evaluation script; its requirements pin ``nltk`` and
``sentence-transformers``). The paper gives only the table, so the protocol here is **our reading** of it:

* :func:`modified_unigram_precision`: BLEU's clipped unigram precision (Papineni et al., ACL 2002, sec. 2.1.1) of
  each generated caption against its set of reference captions: every word of the caption counts at most as often as
  it occurs in any *single* reference. Corpus level (the clipped counts of all captions over all their words, as
  BLEU's ``p_1``) and the mean of the per-caption values. The references of a generated pair are the real captions of
  the training images nearest to the generated image, or any real captions the caller chooses.
* :func:`sentence_similarity`: for each generated caption, the mean cosine similarity between its sentence
  embedding and the embeddings of its first k references (``rank_by="given"``: the references ranked nearest image
  first, so top-k averages over the captions of the k nearest real images), averaged over the pairs, for k in
  (1, 5, 10). The table's values fall from top-1 to top-10 (0.941, 0.926, 0.916 on Flowers): what one expects when
  the k-th reference is a caption of a farther image. ``rank_by="similarity"`` reads it the other way, the k
  references most similar to the caption (non-increasing in k by construction).

Words are :func:`caption_words`: lowercased, punctuation dropped (a final "." would otherwise be a free match).
Sentence embeddings come from an ``embedder``: any callable ``list[str] -> (N, D)`` array or tensor, a local
sentence-transformers (or transformers) model folder, or None for WordLlama's ``l2_supercat`` 256-d static
embeddings, whose weights ship inside the ``wordllama`` wheel (``pip install mmquant[metrics]``; no download). That
default is not the paper's (unknown) model, so its numbers are not comparable to Table 3.

The ``modified_unigram_precision`` and ``sentence_similarity`` folders beside this file wrap these as evaluate
modules.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "caption_words",
    "load_sentence_embedder",
    "modified_unigram_precision",
    "sentence_similarity",
    "sentence_unigram_precisions",
]

_WORD = re.compile(r"\w+(?:'\w+)*")
_RANK_BY = ("given", "similarity")


def caption_words(text: str) -> list[str]:
    """The words of a caption: lowercased runs of letters and digits (with inner apostrophes), punctuation dropped.

    Example:
    >>> caption_words("This flower's petals are PURPLE, and it has a yellow center.")
    ['this', "flower's", 'petals', 'are', 'purple', 'and', 'it', 'has', 'a', 'yellow', 'center']
    """
    return _WORD.findall(text.lower())


def _check_captions(name: str, values) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{name}: expected a list of caption strings, got {type(values).__name__}.")
    if len(values) == 0:
        raise ValueError(f"{name}: expected at least one caption, got an empty list.")
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}]: expected a caption string, got {type(values[bad]).__name__}.")
    return list(values)


def _check_references(references, num_predictions: int, min_len: int = 1) -> list[list[str]]:
    """``references`` as one non-empty list of caption strings per prediction (at least ``min_len`` each)."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ValueError(
            f"references: expected one list of reference captions per prediction, got {type(references).__name__}."
        )
    if len(references) != num_predictions:
        raise ValueError(
            f"references: {len(references)} lists for {num_predictions} predictions; expected one list per prediction."
        )
    checked = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            raise ValueError(f"references[{i}]: expected a list of caption strings, got a string; wrap it: [caption].")
        refs = _check_captions(f"references[{i}]", refs)
        if len(refs) < min_len:
            raise ValueError(
                f"references[{i}]: {len(refs)} reference caption(s), but k={min_len} needs at least {min_len}; "
                f"give at least max(k_values) references per prediction."
            )
        checked.append(refs)
    return checked


def _tokenize(tokenizer: Callable[[str], list[str]] | None, text: str, name: str) -> list[str]:
    words = (tokenizer or caption_words)(text)
    if isinstance(words, str) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"tokenizer: expected a list of word strings for {name}, got {words!r:.80}.")
    return list(words)


def _clipped_counts(
    predictions: Sequence[str], references, tokenizer: Callable[[str], list[str]] | None
) -> list[tuple[int, int]]:
    """(clipped matches, candidate words) of each prediction: BLEU's Count_clip summed over its unigrams."""
    predictions = _check_captions("predictions", predictions)
    references = _check_references(references, len(predictions))
    if tokenizer is not None and not callable(tokenizer):
        raise ValueError(f"tokenizer: expected None or a callable str -> list[str], got {type(tokenizer).__name__}.")
    counts = []
    for i, (text, refs) in enumerate(zip(predictions, references)):
        candidate = Counter(_tokenize(tokenizer, text, f"predictions[{i}]"))
        max_ref = Counter()  # the most times each word occurs in any single reference
        for j, ref in enumerate(refs):
            max_ref |= Counter(_tokenize(tokenizer, ref, f"references[{i}][{j}]"))
        clipped = sum(min(n, max_ref[word]) for word, n in candidate.items())
        counts.append((clipped, sum(candidate.values())))
    return counts


def sentence_unigram_precisions(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    tokenizer: Callable[[str], list[str]] | None = None,
) -> list[float]:
    """The modified unigram precision of each prediction against its own references (0.0 for a caption with no
    words, as ``nltk.translate.bleu_score.modified_precision``). Arguments as :func:`modified_unigram_precision`.

    Example:
    >>> sentence_unigram_precisions(["the the the the", "a red bird"], [["the cat"], ["a small red bird", "a bird"]])
    [0.25, 1.0]
    """
    return [clipped / max(total, 1) for clipped, total in _clipped_counts(predictions, references, tokenizer)]


def modified_unigram_precision(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    tokenizer: Callable[[str], list[str]] | None = None,
) -> dict[str, float]:
    """BLEU's modified (clipped) unigram precision of generated captions (MXQ-VAE Table 3, our reading).

    A word of a generated caption counts as a match at most as many times as it occurs in any single one of that
    caption's references (Papineni et al. 2002, sec. 2.1.1): "the the the the" against "the cat" scores 1/4.

    Args:
        predictions: the N generated captions.
        references: for each generated caption, its reference captions (at least one): e.g. the real captions of
            the training images nearest to the generated image.
        tokenizer: ``str -> list[str]``; defaults to :func:`caption_words` (lowercased, punctuation dropped).

    Returns:
        ``modified_unigram_precision``: corpus level, the clipped matches of all captions over all their words
        (BLEU's ``p_1``; 0.0 when no caption has a word).
        ``mean_sentence_precision``: the mean of the per-caption precisions (:func:`sentence_unigram_precisions`).

    Example:
    >>> modified_unigram_precision(["the the the the", "a red bird"], [["the cat"], ["a small red bird", "a bird"]])
    {'modified_unigram_precision': 0.5714285714285714, 'mean_sentence_precision': 0.625}
    """
    counts = _clipped_counts(predictions, references, tokenizer)
    clipped = sum(c for c, _ in counts)
    total = sum(t for _, t in counts)
    return {
        "modified_unigram_precision": clipped / total if total else 0.0,
        "mean_sentence_precision": sum(c / max(t, 1) for c, t in counts) / len(counts),
    }


# ---------------------------------------------------------------- sentence embedders


class _WordLlamaEmbedder:
    """WordLlama ``l2_supercat`` 256-d static embeddings (mean of token vectors), from the files in the wheel."""

    def __init__(self):
        try:
            import wordllama
        except ImportError as err:
            raise ValueError(
                "embedder=None: the default sentence embedder needs the `wordllama` package (its 16 MB weights ship "
                "in the wheel): `pip install 'mmquant[metrics]'`; or pass embedder=<callable list[str] -> (N, D)> "
                "or a local sentence-transformers model folder."
            ) from err
        package = Path(wordllama.__file__).parent
        # wordllama 0.4 looks for its shipped tokenizer under tokenizer/ but ships it under tokenizers/, the layout
        # of its cache folder: pointing the cache at the package finds both files and never downloads
        self.model = wordllama.WordLlama.load(config="l2_supercat", dim=256, cache_dir=package, disable_download=True)

    def __call__(self, texts: list[str]):
        return self.model.embed(list(texts), norm=False)

    def __repr__(self) -> str:
        return "WordLlamaEmbedder(l2_supercat, dim=256)"


class _TransformersMeanPoolingEmbedder:
    """A local sentence-transformers (or plain transformers) folder: the transformer's token states mean-pooled over
    the attention mask, as sentence-transformers' ``Pooling(pooling_mode_mean_tokens=True)`` does."""

    def __init__(self, path: Path):
        pooling = path / "1_Pooling" / "config.json"
        if pooling.is_file():
            config = json.loads(pooling.read_text())
            if not config.get("pooling_mode_mean_tokens", False) or any(
                v for k, v in config.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
            ):
                raise ValueError(
                    f"embedder={str(path)!r}: its 1_Pooling/config.json is not mean pooling ({config}); only mean-"
                    "pooled sentence-transformers folders load here, pass a callable for others."
                )
        from transformers import AutoModel, AutoTokenizer

        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> Tensor:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        states = self.model(**batch).last_hidden_state  # (N, L, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (N, L, 1)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (N, D)

    def __repr__(self) -> str:
        return f"TransformersMeanPoolingEmbedder({str(self.path)!r})"


def load_sentence_embedder(embedder=None) -> Callable[[list[str]], object]:
    """A callable ``list[str] -> (N, D)`` sentence embedder from ``embedder``:

    * None: WordLlama ``l2_supercat`` (256-d static embeddings; the weights ship in the ``wordllama`` wheel, installed
      by ``pip install 'mmquant[metrics]'``; nothing is downloaded). Not the paper's model.
    * a callable: returned as is (e.g. ``SentenceTransformer(...).encode``).
    * a path to a local model folder: a sentence-transformers folder with mean pooling (e.g. all-MiniLM-L6-v2) or a
      plain transformers encoder folder, loaded with transformers and mean-pooled over the attention mask.
    """
    if embedder is None:
        return _WordLlamaEmbedder()
    if callable(embedder):
        return embedder
    if isinstance(embedder, (str, Path)):
        path = Path(embedder)
        if not (path / "config.json").is_file():
            raise ValueError(
                f"embedder={str(embedder)!r}: not a local model folder with a config.json; expected None, a callable "
                "list[str] -> (N, D), or a sentence-transformers / transformers model folder (nothing is downloaded)."
            )
        return _TransformersMeanPoolingEmbedder(path)
    raise ValueError(
        f"embedder: expected None, a callable list[str] -> (N, D) or a model folder path, got "
        f"{type(embedder).__name__}."
    )


def _embed(embedder, texts: list[str], name: str, names: list[str], batch_size: int) -> Tensor:
    """``(len(texts), D)`` float64 embeddings, checked: 2-D, one row per text, finite, non-zero."""
    rows = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        out = embedder(chunk)
        try:
            out = torch.as_tensor(out.detach().cpu() if isinstance(out, Tensor) else out, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"embedder: expected a (N, D) array or tensor of floats, got {type(out).__name__}."
            ) from err
        if out.ndim != 2 or len(out) != len(chunk):
            raise ValueError(
                f"embedder: expected a ({len(chunk)}, D) array for {len(chunk)} {name}, got shape {tuple(out.shape)}."
            )
        rows.append(out)
    embeds = torch.cat(rows)
    bad = (~torch.isfinite(embeds).all(1)) | (embeds.norm(dim=1) == 0)
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"embedder: NaN, Inf or all-zero embedding for {names[i]} ({texts[i]!r:.60}); cosine similarity is "
            "undefined (an empty caption, or only words the embedder does not know?)."
        )
    return embeds


def sentence_similarity(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    embedder=None,
    k_values: Sequence[int] = (1, 5, 10),
    rank_by: str = "given",
    batch_size: int = 256,
) -> dict[str, float]:
    """Sentence similarity top-k of generated captions (MXQ-VAE Table 3, our reading).

    For each generated caption, the mean cosine similarity between its sentence embedding and those of k of its
    references, averaged over the captions, for each k.

    Args:
        predictions: the N generated captions.
        references: for each generated caption, its reference captions ranked nearest first: e.g. the real captions
            of the training images nearest to the generated image, the nearest image's first (at least
            ``max(k_values)`` each).
        embedder: a callable ``list[str] -> (N, D)`` array or tensor, a local model folder, or None for the
            default (see :func:`load_sentence_embedder`).
        k_values: the k of the top-k (Table 3: 1, 5, 10).
        rank_by: ``"given"``: the first k references in the order given (the k nearest images); ``"similarity"``:
            the k references most similar to the caption, among all those given.
        batch_size: texts per embedder call.

    Returns:
        ``sentence_similarity@<k>`` for each k: the mean over captions of the mean cosine with its k references.

    Example:
    >>> import torch
    >>> vocabulary = ["red", "bird", "flower", "yellow"]
    >>> def bag_of_words(texts):  # any list[str] -> (N, D) callable works
    ...     return torch.tensor([[float(w in t.split()) for w in vocabulary] for t in texts])
    >>> result = sentence_similarity(["red bird"], [["red bird", "yellow flower"]], bag_of_words, k_values=(1, 2))
    >>> {name: round(value, 6) for name, value in result.items()}
    {'sentence_similarity@1': 1.0, 'sentence_similarity@2': 0.5}
    """
    predictions = _check_captions("predictions", predictions)
    if isinstance(k_values, (int, str)) or not k_values:
        raise ValueError(f"k_values={k_values!r}: expected a non-empty list of positive integers, e.g. (1, 5, 10).")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in k_values):
        raise ValueError(f"k_values={tuple(k_values)!r}: expected positive integers, e.g. (1, 5, 10).")
    if rank_by not in _RANK_BY:
        raise ValueError(f"rank_by={rank_by!r}: expected one of {_RANK_BY}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer.")
    k_max = max(k_values)
    references = _check_references(references, len(predictions), min_len=k_max)
    if rank_by == "given":  # only the first k_max references are ever used
        references = [refs[:k_max] for refs in references]
    embedder = load_sentence_embedder(embedder)
    pred_names = [f"predictions[{i}]" for i in range(len(predictions))]
    pred = _embed(embedder, predictions, "predictions", pred_names, batch_size)  # (N, D)
    unique: dict[str, str] = {}  # caption -> where it first occurs; each distinct caption is embedded once
    for i, refs in enumerate(references):
        for j, ref in enumerate(refs):
            unique.setdefault(ref, f"references[{i}][{j}]")
    texts = list(unique)
    ref = _embed(embedder, texts, "references", list(unique.values()), batch_size)  # (U, D)
    if ref.shape[1] != pred.shape[1]:
        raise ValueError(
            f"embedder: predictions embed to {pred.shape[1]} dims, references to {ref.shape[1]}; expected one size."
        )
    pred = torch.nn.functional.normalize(pred, dim=1)
    ref = torch.nn.functional.normalize(ref, dim=1)
    row = {text: r for r, text in enumerate(texts)}
    totals = dict.fromkeys(k_values, 0.0)
    for i, refs in enumerate(references):
        cos = (ref[[row[t] for t in refs]] @ pred[i]).clamp(-1.0, 1.0)  # (R,) in the given order; clamp rounding
        if rank_by == "similarity":
            cos = cos.sort(descending=True).values
        for k in k_values:
            totals[k] += float(cos[:k].mean())
    return {f"sentence_similarity@{k}": totals[k] / len(predictions) for k in k_values}

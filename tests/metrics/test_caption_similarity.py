"""Modified unigram precision and sentence similarity top-k (MXQ-VAE Table 3) on hand-made captions with known
answers, against nltk's BLEU code, with the shipped WordLlama embedder and a tiny transformers folder, and as
evaluate modules."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmquant.metrics.caption_similarity import (
    caption_words,
    load_sentence_embedder,
    modified_unigram_precision,
    sentence_similarity,
    sentence_unigram_precisions,
)

ROOT = Path(__file__).resolve().parents[2]
METRICS = ROOT / "src" / "mmquant" / "metrics"

VOCABULARY = "a the this bird flower red blue yellow purple small wings petals beak has with long short".split()


def bag_of_words(texts):
    """A deterministic embedder for fixtures: word counts over VOCABULARY, plus one constant dimension."""
    return np.array([[caption_words(t).count(w) for w in VOCABULARY] + [0.5] for t in texts], dtype=np.float64)


PREDICTIONS = ["this bird has red wings and a short beak.", "A purple flower with long petals", "the the the the"]
REFERENCES = [
    ["this small bird has red wings and a short beak", "a bird with red wings", "the bird is blue", "a red bird"],
    ["this flower has long purple petals", "the petals are purple", "a yellow flower", "a blue bird"],
    ["the cat is on the mat", "there is a cat on the mat", "a cat", "the dog"],
]


# ---------------------------------------------------------------- modified unigram precision


def test_unigram_precision_known_answers():
    assert sentence_unigram_precisions(["a red bird"], [["a red bird"]]) == [1.0]  # a perfect caption
    assert sentence_unigram_precisions(["the the the the"], [["the cat"]]) == [0.25]  # clipped to one "the"
    assert sentence_unigram_precisions(["purple petals"], [["a red bird", "blue wings"]]) == [0.0]  # nothing shared
    # Papineni et al. 2002, sec. 2.1.1: clipped by the most "the"s in any single reference (2), not their sum
    paper = [["The cat is on the mat.", "There is a cat on the mat."]]
    assert sentence_unigram_precisions(["the the the the the the the"], paper) == [2 / 7]
    # case and punctuation are ignored; an empty caption scores 0
    assert sentence_unigram_precisions(["A RED bird!", ""], [["a red bird"], ["a red bird"]]) == [1.0, 0.0]


def test_corpus_level_sums_counts_and_sentence_mean_averages_precisions():
    got = modified_unigram_precision(["the the the the", "a red bird"], [["the cat"], ["a small red bird"]])
    assert got == {"modified_unigram_precision": pytest.approx(4 / 7), "mean_sentence_precision": 0.625}
    # a caption with no words adds no candidate words to the corpus count but a 0 to the sentence mean
    got = modified_unigram_precision(["a red bird", "..."], [["a red bird"], ["a red bird"]])
    assert got == {"modified_unigram_precision": 1.0, "mean_sentence_precision": 0.5}
    assert modified_unigram_precision([""], [["a bird"]]) == {
        "modified_unigram_precision": 0.0,
        "mean_sentence_precision": 0.0,
    }


def test_custom_tokenizer():
    got = sentence_unigram_precisions(["Red bird ."], [["red bird ."]], tokenizer=str.split)
    assert got == [2 / 3]  # case-sensitive split keeps "." as a word


def test_unigram_precision_equals_nltk_modified_precision():
    bleu = pytest.importorskip("nltk.translate.bleu_score", reason="nltk (dev extra) is the reference implementation")
    rng = np.random.default_rng(0)
    words = "the a bird red wings small flower petals has with".split()
    predictions = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(40)]
    references = [
        [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(rng.integers(1, 4))] for _ in range(40)
    ]
    predictions += PREDICTIONS
    references += REFERENCES
    ours = sentence_unigram_precisions(predictions, references)
    theirs = [
        float(bleu.modified_precision([caption_words(r) for r in refs], caption_words(p), n=1))
        for p, refs in zip(predictions, references)
    ]
    assert ours == pytest.approx(theirs, abs=1e-12)
    # corpus level: BLEU's p_1, the sum of the clipped counts over the sum of the candidate counts
    fractions = [
        bleu.modified_precision([caption_words(r) for r in refs], caption_words(p), n=1)
        for p, refs in zip(predictions, references)
    ]
    corpus = sum(f.numerator for f in fractions) / sum(f.denominator for f in fractions)
    assert modified_unigram_precision(predictions, references)["modified_unigram_precision"] == pytest.approx(corpus)


# ---------------------------------------------------------------- sentence similarity


def test_identical_sentences_score_one():
    got = sentence_similarity(PREDICTIONS, [[p] * 3 for p in PREDICTIONS], bag_of_words, k_values=(1, 3))
    assert got == pytest.approx({"sentence_similarity@1": 1.0, "sentence_similarity@3": 1.0}, abs=1e-12)


def test_top_k_is_the_mean_cosine_over_the_first_k_references():
    got = sentence_similarity(PREDICTIONS, REFERENCES, bag_of_words, k_values=(1, 2, 4))
    for k in (1, 2, 4):
        expected = np.mean(
            [
                np.mean([_cosine(bag_of_words([p])[0], bag_of_words([r])[0]) for r in refs[:k]])
                for p, refs in zip(PREDICTIONS, REFERENCES)
            ]
        )
        assert got[f"sentence_similarity@{k}"] == pytest.approx(expected, abs=1e-12)
    # ranked nearest first, as the references above are: top-1 >= top-2 >= top-4
    assert got["sentence_similarity@1"] >= got["sentence_similarity@2"] >= got["sentence_similarity@4"]


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_by_similarity_is_non_increasing_in_k_and_at_least_the_given_order(seed):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(50, 6, generator=g, dtype=torch.float64)

    def embed(texts):
        return table[[int(t) for t in texts]]

    predictions = [str(i) for i in range(5)]
    references = [[str(j) for j in torch.randperm(45, generator=g)[:10].add(5).tolist()] for _ in range(5)]
    given = sentence_similarity(predictions, references, embed, k_values=(1, 5, 10))
    best = sentence_similarity(predictions, references, embed, k_values=(1, 5, 10), rank_by="similarity")
    assert best["sentence_similarity@1"] >= best["sentence_similarity@5"] >= best["sentence_similarity@10"]
    for k in (1, 5):
        assert best[f"sentence_similarity@{k}"] >= given[f"sentence_similarity@{k}"] - 1e-12
    # with all 10 references, both readings average the same cosines
    assert best["sentence_similarity@10"] == pytest.approx(given["sentence_similarity@10"], abs=1e-12)
    # one embedder call per batch gives the same numbers; a torch-tensor embedder is accepted
    small = sentence_similarity(predictions, references, embed, k_values=(1, 5, 10), batch_size=3)
    assert small == pytest.approx(given, abs=1e-12)


def test_references_beyond_k_are_not_embedded_in_the_given_order():
    seen = []

    def embed(texts):
        seen.extend(texts)
        return bag_of_words(texts)

    sentence_similarity(["a red bird"], [["a red bird", "a bird", "unused caption"]], embed, k_values=(1, 2))
    assert "unused caption" not in seen and seen.count("a red bird") == 2  # once as prediction, once as reference


# ---------------------------------------------------------------- bad inputs


def _nan_embedder(texts):
    out = bag_of_words(texts)
    out[[t == "x" for t in texts], 0] = np.nan
    return out


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: modified_unigram_precision(["a", "b"], [["a"]]), r"references: 1 lists for 2 predictions"),
        (lambda: modified_unigram_precision([], []), r"predictions: expected at least one caption"),
        (lambda: modified_unigram_precision(["a"], [[]]), r"references\[0\]: expected at least one caption"),
        (lambda: modified_unigram_precision(["a", 3], [["a"], ["b"]]), r"predictions\[1\]: expected a caption string"),
        (lambda: modified_unigram_precision(["a"], [["a", None]]), r"references\[0\]\[1\]: expected a caption"),
        (lambda: modified_unigram_precision(["a"], ["a"]), r"references\[0\]: expected a list of caption strings"),
        (lambda: modified_unigram_precision("a bird", [["a"]]), r"predictions: expected a list of caption strings"),
        (lambda: modified_unigram_precision(["a"], [["a"]], tokenizer="split"), r"tokenizer: expected None"),
        (lambda: modified_unigram_precision(["a"], [["a"]], tokenizer=str.lower), r"tokenizer: expected a list"),
        (lambda: sentence_similarity(["a"], [["a", "b"]], bag_of_words), r"references\[0\]: 2 reference caption"),
        (lambda: sentence_similarity(["a"], [["a"]], bag_of_words, k_values=(0,)), r"k_values=\(0,\)"),
        (lambda: sentence_similarity(["a"], [["a"]], bag_of_words, k_values=()), r"k_values=\(\)"),
        (lambda: sentence_similarity(["a"], [["a"]], bag_of_words, k_values=(1,), rank_by="x"), r"rank_by='x'"),
        (lambda: sentence_similarity(["a"], [["a"]], bag_of_words, k_values=(1,), batch_size=0), r"batch_size=0"),
        (lambda: sentence_similarity(["a", "b"], [["a"]], bag_of_words, k_values=(1,)), r"1 lists for 2"),
        (lambda: sentence_similarity(["a", 1], [["a"], ["b"]], bag_of_words, k_values=(1,)), r"predictions\[1\]"),
        (lambda: sentence_similarity(["a"], [["red", "x"]], _nan_embedder, k_values=(2,)), r"references\[0\]\[1\]"),
        (lambda: sentence_similarity(["a"], [["a"]], lambda t: np.zeros((1, 3)), k_values=(1,)), "all-zero"),
        (lambda: sentence_similarity(["a"], [["a"]], lambda t: np.ones(3), k_values=(1,)), r"\(1, D\) array"),
        (lambda: sentence_similarity(["a"], [["a"]], lambda t: "x", k_values=(1,)), "array or tensor of floats"),
        (lambda: sentence_similarity(["a"], [["a"]], "/no/such/folder", k_values=(1,)), "not a local model folder"),
        (lambda: sentence_similarity(["a"], [["a"]], 3, k_values=(1,)), "embedder: expected None"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_different_embedding_sizes_are_an_error():
    calls = iter([np.ones((1, 3)), np.ones((1, 4))])
    with pytest.raises(ValueError, match="predictions embed to 3 dims, references to 4"):
        sentence_similarity(["a"], [["b"]], lambda texts: next(calls), k_values=(1,))


# ---------------------------------------------------------------- embedders


def test_wordllama_default_loads_offline_from_the_wheel(monkeypatch):
    pytest.importorskip("wordllama", reason="the default embedder needs `pip install 'mmquant[metrics]'`")
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("the default embedder tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    embedder = load_sentence_embedder()
    embeds = np.asarray(embedder(["a small bird with red wings", "this bird has red wings", "a purple flower"]))
    assert embeds.shape == (3, 256) and np.isfinite(embeds).all()
    got = sentence_similarity(
        ["a small bird with red wings"],
        [["a small bird with red wings", "this bird has red wings", "a purple flower with long petals"]],
        embedder,
        k_values=(1, 2, 3),
    )
    assert got["sentence_similarity@1"] == pytest.approx(1.0, abs=1e-6)
    assert got["sentence_similarity@1"] > got["sentence_similarity@2"] > got["sentence_similarity@3"]
    with pytest.raises(ValueError, match=r"predictions\[0\]"):  # an empty caption has no embedding
        sentence_similarity([""], [["a bird"]], embedder, k_values=(1,))


def _tiny_sentence_transformers_folder(path: Path, pooling: dict) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *VOCABULARY])}
    backend = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return path


def test_local_sentence_transformers_folder_is_mean_pooled(tmp_path):
    folder = _tiny_sentence_transformers_folder(tmp_path / "st", {"pooling_mode_mean_tokens": True})
    embedder = load_sentence_embedder(str(folder))
    texts = ["a red bird", "this flower has long purple petals"]
    embeds = embedder(texts)
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        for text, row in zip(texts, embeds):  # one at a time: no padding, a plain mean over the tokens
            states = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            torch.testing.assert_close(row, states.mean(0))
    got = sentence_similarity(texts, [[t] for t in texts], folder, k_values=(1,))
    assert got["sentence_similarity@1"] == pytest.approx(1.0, abs=1e-6)


def test_a_folder_that_is_not_mean_pooled_is_refused(tmp_path):
    folder = _tiny_sentence_transformers_folder(
        tmp_path / "cls", {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    )
    with pytest.raises(ValueError, match="not mean pooling"):
        load_sentence_embedder(folder)


def test_the_metrics_import_no_embedder():
    """The embedder and the test-only reference load on use (``import mmquant`` itself imports transformers)."""
    code = (
        "import sys, mmquant, mmquant.metrics.caption_similarity; "
        "print(','.join(m for m in ('wordllama', 'nltk', 'evaluate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------- evaluate modules


@pytest.fixture(scope="module")
def modules():
    import evaluate

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        unigram = evaluate.load(str(METRICS / "modified_unigram_precision"), keep_in_memory=True)
        similarity = evaluate.load(str(METRICS / "sentence_similarity"), keep_in_memory=True, embedder=bag_of_words)
        yield {"modified_unigram_precision": unigram, "sentence_similarity": similarity}


def test_evaluate_modules_equal_the_functions(modules):
    got = modules["modified_unigram_precision"].compute(predictions=PREDICTIONS, references=REFERENCES)
    assert got == modified_unigram_precision(PREDICTIONS, REFERENCES)
    got = modules["modified_unigram_precision"].compute(
        predictions=PREDICTIONS, references=REFERENCES, tokenizer=str.split
    )
    assert got == modified_unigram_precision(PREDICTIONS, REFERENCES, tokenizer=str.split)
    metric = modules["sentence_similarity"]
    for rank_by in ("given", "similarity"):
        got = metric.compute(predictions=PREDICTIONS, references=REFERENCES, k_values=[1, 2, 4], rank_by=rank_by)
        expected = sentence_similarity(PREDICTIONS, REFERENCES, bag_of_words, k_values=(1, 2, 4), rank_by=rank_by)
        assert got == pytest.approx(expected, abs=1e-12)
    # an embedder per call wins over the load-time one
    ones = lambda texts: np.ones((len(texts), 2))  # noqa: E731
    got = metric.compute(predictions=["a b"], references=[["c d"]], embedder=ones, k_values=[1])
    assert got == pytest.approx({"sentence_similarity@1": 1.0})
    with pytest.raises(ValueError, match=r"references\[0\]: 3 reference caption"):
        metric.compute(predictions=["a"], references=[["a", "b", "c"]], k_values=[1, 5])


@pytest.mark.parametrize("name", ["modified_unigram_precision", "sentence_similarity"])
def test_metric_card_example_runs(monkeypatch, name):
    if name == "sentence_similarity":
        pytest.importorskip("wordllama", reason="the card's example uses the default embedder (mmquant[metrics])")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(
        str(METRICS / name / "README.md"), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0 and result.attempted > 0


def test_metric_folders_are_not_packages():
    for name in ("modified_unigram_precision", "sentence_similarity"):
        assert (METRICS / name / f"{name}.py").is_file() and (METRICS / name / "README.md").is_file()
        assert not (METRICS / name / "__init__.py").exists()

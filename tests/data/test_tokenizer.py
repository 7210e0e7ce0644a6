"""The shared word-level caption tokenizer: a transformers PreTrainedTokenizerFast that round-trips captions and
survives save_pretrained / AutoTokenizer.from_pretrained."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mmquant.data.caption_grammar import caption_vocabulary
from mmquant.data.caption_mnist import DEFAULT_COLORS, generate_caption_mnist
from mmquant.data.tokenizer import SPECIAL_TOKENS, build_word_tokenizer, train_caption_tokenizer


@pytest.fixture(scope="module")
def captions():
    return [row["caption"] for k in (1, 4) for row in generate_caption_mnist("train", 200, num_objects=k)]


def test_round_trip_and_special_tokens(captions):
    tokenizer = train_caption_tokenizer(captions, model_max_length=48)
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert tokenizer.pad_token_id == 0
    for name, token in SPECIAL_TOKENS.items():
        assert getattr(tokenizer, name) == token
    for caption in captions:
        ids = tokenizer(caption).input_ids
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == caption.lower()


def test_save_and_load(tmp_path, captions):
    tokenizer = train_caption_tokenizer(captions, model_max_length=48)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.model_max_length == 48
    batch = loaded(captions[:8], padding="max_length", return_tensors="pt")
    assert batch.input_ids.shape == (8, 48)
    assert batch.input_ids.tolist() == tokenizer(captions[:8], padding="max_length").input_ids
    assert (batch.input_ids[batch.attention_mask == 0] == loaded.pad_token_id).all()
    assert loaded.mask_token_id is not None and loaded.mask_token_id != loaded.unk_token_id


def test_unknown_words_and_min_frequency():
    tokenizer = train_caption_tokenizer(["a red 7 .", "a red 3 ."], min_frequency=2, extra_words=["blue"])
    vocab = tokenizer.get_vocab()
    assert {"a", "red", ".", "blue"} <= set(vocab) and "7" not in vocab  # 7 seen once
    ids = tokenizer("A purple 7.").input_ids
    assert ids.count(tokenizer.unk_token_id) == 2


def test_closed_vocabulary_tokenizer(captions):
    tokenizer = build_word_tokenizer(caption_vocabulary(DEFAULT_COLORS), model_max_length=48)
    assert len(tokenizer) == len(SPECIAL_TOKENS) + len(caption_vocabulary(DEFAULT_COLORS))
    assert all(tokenizer.unk_token_id not in tokenizer(c).input_ids for c in captions)


@pytest.mark.parametrize(
    ("captions", "kwargs", "error", "message"),
    [
        ([], {}, ValueError, "empty"),
        ("a red 7", {}, TypeError, "single string"),
        (["a red 7", 3], {}, TypeError, r"captions\[1\]"),
        (["a"], {"model_max_length": 2}, ValueError, "model_max_length=2"),
    ],
)
def test_bad_training_input(captions, kwargs, error, message):
    with pytest.raises(error, match=message):
        train_caption_tokenizer(captions, **kwargs)

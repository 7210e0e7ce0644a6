"""The caption tokenizer shared by all models: word level, built with the ``tokenizers`` library and wrapped as a
transformers ``PreTrainedTokenizerFast`` (``save_pretrained`` / ``AutoTokenizer.from_pretrained``, no remote code).

    tokenizer = train_caption_tokenizer(dataset["train"]["caption"], model_max_length=48)
    batch = tokenizer(["The 6 on the lower right is blue."], padding="max_length", return_tensors="pt")
    tokenizer.decode(batch.input_ids[0], skip_special_tokens=True)   # 'the 6 on the lower right is blue.'

Text is NFKC-normalised and lower-cased, split into words and punctuation; every sequence is wrapped as
``[BOS] ... [EOS]``. Special tokens: ``[PAD]`` (id 0), ``[BOS]``, ``[EOS]``, ``[UNK]``, ``[MASK]`` (for text
corruption / masked modelling). Decoding re-attaches punctuation (``clean_up_tokenization_spaces``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SPECIAL_TOKENS", "build_word_tokenizer", "train_caption_tokenizer"]

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "bos_token": "[BOS]",
    "eos_token": "[EOS]",
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
}


def _backend(vocab: dict[str, int] | None = None):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # words and runs of punctuation
    return tokenizer, processors


def _check_max_length(model_max_length: int) -> None:
    if not isinstance(model_max_length, int) or model_max_length < 3:
        raise ValueError(f"model_max_length={model_max_length!r}: needs room for [BOS], a word and [EOS] (>= 3).")


def _wrap(backend, processors, model_max_length: int):
    from transformers import PreTrainedTokenizerFast

    bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} $B {eos}",
        special_tokens=[(bos, backend.token_to_id(bos)), (eos, backend.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=True,
        padding_side="right",
        **SPECIAL_TOKENS,
    )


def train_caption_tokenizer(
    captions: Iterable[str],
    *,
    model_max_length: int = 64,
    min_frequency: int = 1,
    max_vocab_size: int | None = None,
    extra_words: Iterable[str] = (),
):
    """Train the word-level tokenizer on ``captions`` (e.g. a train split's caption column).

    Words seen fewer than ``min_frequency`` times map to ``[UNK]``; ``max_vocab_size`` caps the vocabulary (special
    tokens included) to the most frequent words; ``extra_words`` are always added (e.g. a closed vocabulary such as
    ``caption_grammar.caption_vocabulary(colors)``)."""
    from tokenizers.trainers import WordLevelTrainer

    if isinstance(captions, str):
        raise TypeError("captions: expected an iterable of caption strings, got a single string.")
    _check_max_length(model_max_length)
    backend, processors = _backend()
    trainer = WordLevelTrainer(
        vocab_size=max_vocab_size or 10**9,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
    )
    extra = list(extra_words)
    n_seen = 0

    def corpus():
        nonlocal n_seen
        for caption in captions:
            if not isinstance(caption, str):
                raise TypeError(f"captions[{n_seen}]: expected a string, got {type(caption).__name__}.")
            n_seen += 1
            yield caption
        yield from extra  # each extra word once: kept whatever min_frequency says (added below too)

    backend.train_from_iterator(corpus(), trainer=trainer)
    if n_seen == 0 and not extra:
        raise ValueError("captions: empty; the tokenizer needs at least one caption to learn a vocabulary.")
    missing = [w for w in extra if backend.token_to_id(w) is None]
    if missing:  # min_frequency dropped them: rebuild with them appended
        vocab = backend.get_vocab() | {w: len(backend.get_vocab()) + i for i, w in enumerate(missing)}
        backend, processors = _backend(vocab)
    return _wrap(backend, processors, model_max_length)


def build_word_tokenizer(words: Iterable[str], *, model_max_length: int = 64):
    """A tokenizer over exactly ``words`` (plus the special tokens), ids in the given order after the specials."""
    _check_max_length(model_max_length)
    if isinstance(words, str):
        raise TypeError("words: expected an iterable of words, got a single string.")
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS.values())}
    for word in words:
        vocab.setdefault(word.lower(), len(vocab))
    backend, processors = _backend(vocab)
    return _wrap(backend, processors, model_max_length)

"""MXQ-VAE stage 1, prior and pipeline on tiny configs: masks as configured, shapes, Auto-class round trips, KV-cache
sampling equal to uncached sampling, prefix completion, pipeline save/load, and clear errors on bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

import mmquant
from mmquant.data.caption_grammar import caption_vocabulary
from mmquant.data.pairs import tokenize_captions
from mmquant.data.tokenizer import build_word_tokenizer
from mmquant.models.mxqvae import MXQVAEConfig, MXQVAEModel, MXQVAEPriorConfig, MXQVAEPriorForCausalLM

COLORS = ("white", "red", "green", "blue")


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(caption_vocabulary(COLORS), model_max_length=48)


def tiny_config(tokenizer, **overrides) -> MXQVAEConfig:
    fields = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        image_channels=[8, 8, 8],
        image_res_layers=1,
        hidden_size=16,
        num_fusion_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        text_embed_dim=8,
        quantizer_config={"type": "vq", "codebook_size": 32},
    )
    return MXQVAEConfig(**(fields | overrides))


def batch(tokenizer, n=3):
    captions = ["The red 7 is on the upper left.", "This is white 3.", "There is a blue 0 on the bottom right."]
    ids = tokenizer((captions * n)[:n], padding="max_length", max_length=48, return_tensors="pt").input_ids
    return torch.rand(n, 3, 64, 64) * 2 - 1, ids


def test_shapes_and_round_trip_through_auto_classes(tmp_path, tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer)).eval()
    x, ids = batch(tokenizer)
    indices = model.encode_to_indices(x, ids)
    assert indices.shape == (3, model.config.num_tokens) == (3, 64 + 8)
    images, tokens = model.decode_indices(indices)
    assert images.shape == x.shape and tokens.shape == ids.shape and images.abs().max() <= 1
    out = model(x, ids)
    assert torch.isfinite(out.loss) and out.text_logits.shape == (3, 48, len(tokenizer))
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MXQVAEModel)
    assert torch.equal(loaded.encode_to_indices(x, ids), indices)


def test_training_step_reduces_the_loss(tokenizer):
    torch.manual_seed(0)
    model = MXQVAEModel(tiny_config(tokenizer)).train()
    x, ids = batch(tokenizer, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        out = model(x, ids, generator=torch.Generator().manual_seed(1))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_one_modality_rows_see_only_their_modality_and_are_pulled_to_the_clean_codes(tokenizer):
    """text_only_ratio / image_only_ratio: the first rows of a training batch are encoded from the caption alone (blank
    image, clean caption) and the next from the image alone (clean image, the all-[MASK] caption the pipeline's
    image prefix uses); image-only rows add nothing to the caption loss; the consistency term is the mean squared
    distance of those rows' prefix positions to the clean pair's codes."""
    torch.manual_seed(0)
    config = tiny_config(tokenizer, text_only_ratio=0.25, image_only_ratio=0.25, prefix_consistency_weight=1.0)
    model = MXQVAEModel(config).train()
    x, ids = batch(tokenizer, 8)
    seen = []
    handle = model.image_encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    text_handle = model.text_encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    out = model(x, ids, generator=torch.Generator().manual_seed(0))
    handle.remove()
    text_handle.remove()
    images_in, ids_in = seen[0], seen[1]  # the training forward (the clean targets' forward comes after)
    assert (images_in[:2] == 0).all() and torch.equal(ids_in[:2], ids[:2])  # text-only rows: blank, clean caption
    only_image = model.image_only_inputs(x[2:4])
    assert torch.equal(images_in[2:4], x[2:4]) and torch.equal(ids_in[2:4], only_image[1])  # image-only rows
    assert (ids_in[2:4, :24] == tokenizer.mask_token_id).all() and (ids_in[2:4, 24:] == tokenizer.pad_token_id).all()
    assert not torch.equal(ids_in[4:], ids[4:]) or not torch.equal(images_in[4:], x[4:])  # the rest: IM / TC
    # the caption loss counts the text-only and the other rows' tokens, not the image-only rows'
    real = ids != tokenizer.pad_token_id
    assert int(out.text_loss_tokens) == int(real.sum() - real[2:4].sum())
    # the consistency term, recomputed from the fused tokens and the clean pair's codes
    n_img = config.num_image_tokens
    model.eval()
    with torch.no_grad():
        z = model._fuse(images_in, ids_in)
        clean = model.quantizer(model._fuse(x[:4], ids[:4])).quantized
    expected = torch.cat(
        [(z[:2, n_img:] - clean[:2, n_img:]).flatten(), (z[2:4, :n_img] - clean[2:4, :n_img]).flatten()]
    )
    torch.testing.assert_close(out.prefix_consistency_loss, expected.pow(2).mean())
    # it trains: the text-only encoding's text codes move to the clean pair's
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(out.prefix_consistency_loss.detach())
    for _ in range(30):
        out = model(x, ids, generator=torch.Generator().manual_seed(0))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(out.prefix_consistency_loss.detach()) < 0.5 * first
    # eval mode and the default config encode the inputs as given
    plain = MXQVAEModel(tiny_config(tokenizer)).train()
    out = plain(x, ids, generator=torch.Generator().manual_seed(0))
    assert out.prefix_consistency_loss is None and int(out.text_loss_tokens) == int(real.sum())


def test_image_mask_follows_the_config(tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer, image_mask_ratio=0.25, image_mask_patch_size=8))
    x = torch.ones(2, 3, 64, 64)
    masked = model.mask_image(x, torch.Generator().manual_seed(0))
    patches = masked[:, 0].unfold(1, 8, 8).unfold(2, 8, 8)  # (B, 8, 8, 8, 8)
    zero = (patches == 0).flatten(3).all(-1)  # (B, 8, 8) whole patch zeroed
    assert zero.sum(dim=(1, 2)).tolist() == [16, 16]  # 25% of 64 patches
    assert ((patches == 1).flatten(3).all(-1) | zero).all()  # every other patch untouched
    off = MXQVAEModel(tiny_config(tokenizer, image_mask_ratio=0.0))
    assert torch.equal(off.mask_image(x), x)


def test_text_corruption_follows_the_config(tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer, text_mask_ratio=0.3))
    _, ids = batch(tokenizer)
    corrupted = model.corrupt_text(ids, torch.Generator().manual_seed(0))
    real = ids != tokenizer.pad_token_id
    changed = corrupted != ids
    assert (corrupted[changed] == tokenizer.mask_token_id).all()
    assert not changed[~real].any()  # padding is never corrupted
    assert changed.sum(1).tolist() == (real.sum(1) * 0.3).long().tolist()
    off = MXQVAEModel(tiny_config(tokenizer, text_mask_ratio=0.0))
    assert torch.equal(off.corrupt_text(ids), ids)


def _slot_groups(tokenizer):
    return [
        tokenizer.convert_tokens_to_ids([str(d) for d in range(10)]),
        tokenizer.convert_tokens_to_ids(list(COLORS)),
    ]


def test_text_corruption_restricted_to_groups_replaces_within_the_group(tokenizer):
    groups = _slot_groups(tokenizer)
    model = MXQVAEModel(
        tiny_config(tokenizer, text_mask_ratio=0.5, text_corruption_groups=groups, text_replace_ratio=0.5)
    )
    _, ids = batch(tokenizer, n=300)
    corrupted = model.corrupt_text(ids, torch.Generator().manual_seed(0))
    eligible = torch.isin(ids, torch.tensor(groups[0] + groups[1]))
    changed = corrupted != ids
    assert not changed[~eligible].any()  # template words and padding stay intact
    assert changed.sum(1).tolist() == (eligible.sum(1) * 0.5).long().tolist()
    masked = corrupted == tokenizer.mask_token_id
    replaced = changed & ~masked
    # about half of the corrupted words are replaced, each by another word of its own group
    assert 0.35 < replaced.sum() / changed.sum() < 0.65
    for group in groups:
        g = torch.tensor(group)
        in_group = torch.isin(ids, g) & replaced
        assert torch.isin(corrupted[in_group], g).all()
    assert (corrupted[replaced] != ids[replaced]).all()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text_replace_ratio": 0.5}, "needs text_corruption_groups"),
        ({"text_corruption_groups": [[5]]}, "at least 2"),
        ({"text_corruption_groups": [[5, 6], [6, 7]]}, "disjoint"),
        ({"text_corruption_groups": [[5, 999]]}, "vocab_size"),
        ({"text_replace_ratio": 1.5, "text_corruption_groups": [[5, 6]]}, "text_replace_ratio=1.5"),
    ],
)
def test_bad_corruption_configs(tokenizer, fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tokenizer, **fields)


def test_masks_only_in_training(tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer)).eval()
    x, ids = batch(tokenizer)
    a, b = model(x, ids), model(x, ids)
    assert torch.equal(a.indices, b.indices)  # eval: deterministic, clean inputs


def test_shared_codebook_only_ablation_keeps_modalities_apart(tokenizer):
    x, ids = batch(tokenizer)
    other_ids = ids.flip(0)
    n_img = 64
    with torch.no_grad():
        alone = MXQVAEModel(tiny_config(tokenizer, fusion="shared_codebook_only")).eval()
        a, b = alone._fuse(x, ids), alone._fuse(x, other_ids)
        assert torch.equal(a[:, :n_img], b[:, :n_img])  # the caption cannot change the image tokens
        cross = MXQVAEModel(tiny_config(tokenizer)).eval()
        a, b = cross._fuse(x, ids), cross._fuse(x, other_ids)
        assert not torch.allclose(a[:, :n_img], b[:, :n_img])  # fused: it does


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda x, ids: (x[:, :, :32, :32], ids), ValueError, "resized to 64x64"),
        (lambda x, ids: (x[:, :1], ids), ValueError, "pixel_values"),
        (lambda x, ids: (x.to(torch.uint8), ids), TypeError, "float"),
        (lambda x, ids: (x * float("nan"), ids), ValueError, "NaN"),
        (lambda x, ids: (x, ids[:, :40]), ValueError, "max_text_length=48"),
        (lambda x, ids: (x, ids + 1000), ValueError, "vocab_size"),
        (lambda x, ids: (x[:2], ids), ValueError, "batch sizes differ"),
    ],
)
def test_bad_inputs(tokenizer, make, error, message):
    model = MXQVAEModel(tiny_config(tokenizer))
    x, ids = make(*batch(tokenizer))
    with pytest.raises(error, match=message):
        model(x, ids)


def test_bad_indices(tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer))
    with pytest.raises(ValueError, match="codebook_size=32"):
        model.decode_indices(torch.full((1, 72), 32))
    with pytest.raises(ValueError, match="codebook_size=32"):
        model.decode_indices(torch.full((1, 72), -1))
    with pytest.raises(ValueError, match="num_tokens=72"):
        model.decode_indices(torch.zeros(1, 70, dtype=torch.long))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fusion": "late"}, "fusion='late'"),
        ({"image_size": 60}, "image_size=60"),
        ({"max_text_length": 47}, "multiple of text_num_layers"),
        ({"text_mask_ratio": 1.5}, "text_mask_ratio"),
        ({"text_only_ratio": -0.1}, "text_only_ratio"),
        ({"text_only_ratio": 0.6, "image_only_ratio": 0.5}, "at most 1"),
        ({"prefix_consistency_weight": -1.0}, "prefix_consistency_weight"),
    ],
)
def test_bad_configs(tokenizer, fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tokenizer, **fields)


@pytest.fixture(scope="module")
def prior(tokenizer):
    torch.manual_seed(0)
    config = MXQVAEPriorConfig(stage1_config=tiny_config(tokenizer).to_dict(), n_layer=1, n_head=2, n_embd=32)
    return MXQVAEPriorForCausalLM(config).eval()


def test_prior_config_nests_stage1_and_round_trips(tmp_path, prior):
    assert prior.config.vocab_size == 32 + 2 and prior.config.n_positions == 73
    prior.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MXQVAEPriorForCausalLM) and isinstance(loaded.config.stage1_config, MXQVAEConfig)
    stage1 = [
        {k: v for k, v in c.stage1_config.to_dict().items() if k != "dtype"} for c in (loaded.config, prior.config)
    ]
    assert stage1[0] == stage1[1]
    seq = prior.to_sequence(torch.randint(0, 32, (2, 72)), text_first=True)
    torch.testing.assert_close(loaded(input_ids=seq).logits, prior(input_ids=seq).logits)


def test_kv_cache_sampling_equals_uncached_sampling(prior):
    cached = prior.sample_codes(4, generator_seed=3, use_cache=True)
    uncached = prior.sample_codes(4, generator_seed=3, use_cache=False)
    assert cached.shape == (4, 72) and torch.equal(cached, uncached)
    assert cached.max() < 32  # start tokens are never sampled


def test_orders_round_trip_and_prefix_is_kept(prior):
    codes = torch.randint(0, 32, (3, 72))
    for text_first in (False, True):
        assert torch.equal(prior.from_sequence(prior.to_sequence(codes, text_first)), codes)
    text_codes = codes[:1, 64:]
    completed = prior.sample_codes(2, prefix=text_codes, text_first=True, generator_seed=0)
    assert torch.equal(completed[:, 64:], text_codes.expand(2, -1))
    image_codes = codes[:1, :64]
    completed = prior.sample_codes(2, prefix=image_codes, generator_seed=0)
    assert torch.equal(completed[:, :64], image_codes.expand(2, -1))
    with pytest.raises(ValueError, match="codebook_size=32"):
        prior.sample_codes(1, prefix=torch.full((1, 3), 40))


def test_guidance_follows_the_prefix_against_the_other_order(prior):
    """guidance_scale g: each step takes g * log p(x | prefix) - (g - 1) * log p(x), the unconditional branch being the
    other order's start token alone; recomputed here step by step (greedy, so the choice is deterministic)."""
    torch.manual_seed(1)
    text_codes = torch.randint(0, 32, (1, 8))
    g = 3.0
    guided = prior.sample_codes(1, prefix=text_codes, text_first=True, top_k=1, guidance_scale=g)
    cond = torch.cat([torch.tensor([[prior.config.text_first_token_id]]), text_codes], 1)
    uncond = torch.tensor([[prior.config.image_first_token_id]])
    with torch.no_grad():
        for _ in range(64):
            lc = prior(input_ids=cond).logits[:, -1].log_softmax(-1)
            lu = prior(input_ids=uncond).logits[:, -1].log_softmax(-1)
            scores = g * (lc - lu) + lu
            scores[:, 32:] = -float("inf")  # the start tokens are never sampled
            nxt = scores.argmax(-1, keepdim=True)
            cond, uncond = torch.cat([cond, nxt], 1), torch.cat([uncond, nxt], 1)
    assert torch.equal(guided[:, :64], cond[:, 9:]) and torch.equal(guided[:, 64:], text_codes)
    assert not torch.equal(guided, prior.sample_codes(1, prefix=text_codes, text_first=True, top_k=1))
    # several prefix rows and samples; scale 1 is no guidance
    rows = torch.randint(0, 32, (2, 64))
    assert prior.sample_codes(3, prefix=rows, guidance_scale=2.0, generator_seed=0).shape == (6, 72)
    plain = prior.sample_codes(2, prefix=rows, generator_seed=0)
    assert torch.equal(prior.sample_codes(2, prefix=rows, guidance_scale=1.0, generator_seed=0), plain)
    with pytest.raises(ValueError, match="needs a prefix"):
        prior.sample_codes(1, guidance_scale=2.0)
    with pytest.raises(ValueError, match="guidance_scale=-1"):
        prior.sample_codes(1, prefix=rows, guidance_scale=-1)


def test_text_temperature_samples_the_caption_codes_after_the_image(prior):
    """text_temperature: the image positions come from the first generate call (as without it), the text positions
    from a second one at that temperature; equal to `temperature` it is the one-call sampling."""
    one_call = prior.sample_codes(3, generator_seed=5, temperature=0.7)
    assert torch.equal(prior.sample_codes(3, generator_seed=5, temperature=0.7, text_temperature=0.7), one_call)
    two = prior.sample_codes(3, generator_seed=5, temperature=0.7, text_temperature=1e-4)
    assert torch.equal(two[:, :64], one_call[:, :64]) and not torch.equal(two, one_call)
    # at a tiny temperature the text codes are the prior's most likely ones given the image (greedy)
    greedy = prior.sample_codes(1, prefix=two[:, :64], top_k=1)
    assert torch.equal(two, greedy)
    rows = torch.randint(0, 32, (2, 64))  # an image prefix: only the text is sampled, num_samples per row
    assert prior.sample_codes(2, prefix=rows, text_temperature=0.5, generator_seed=0).shape == (4, 72)
    # with guidance and a part of the image given, the second call's unconditional branch continues from the codes
    # drawn in the first: greedy (top-k 1, so the temperatures do not matter) it is the one-call guided sampling
    part = rows[:, :10]
    one = prior.sample_codes(2, prefix=part, top_k=1, guidance_scale=3.0, generator_seed=0)
    two = prior.sample_codes(2, prefix=part, top_k=1, guidance_scale=3.0, generator_seed=0, text_temperature=0.5)
    assert torch.equal(one, two)
    with pytest.raises(ValueError, match="text_first=False"):
        prior.sample_codes(1, text_first=True, prefix=rows[:, :8], text_temperature=0.5)
    with pytest.raises(ValueError, match="text_temperature=0"):
        prior.sample_codes(1, text_temperature=0)


def test_refine_keeps_the_image_codes_and_re_encodes_the_caption(tokenizer, prior):
    """refine: the image codes are the prior's, the text codes those of stage 1 encoding (decoded image, sampled
    caption); the returned codes decode to the returned caption. PAPER_SAMPLING decodes the prior's codes."""
    from mmquant.pipelines import MXQVAEPipeline

    stage1 = MXQVAEModel(prior.config.stage1_config).eval()
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)
    paper = pipe(num_samples=3, seed=2, **MXQVAEPipeline.PAPER_SAMPLING)
    assert torch.equal(paper.codes, prior.sample_codes(3, generator_seed=2, top_k=10))
    low = pipe(num_samples=3, seed=2, refine=False, caption_drafts=1)
    refined = pipe(num_samples=3, seed=2, caption_drafts=1)
    assert torch.equal(refined.codes[:, :64], low.codes[:, :64])
    images, ids = stage1.decode_indices(low.codes)
    expected = stage1.encode_to_indices(images, ids)[:, 64:]
    assert torch.equal(refined.codes[:, 64:], expected)
    decoded, ids = stage1.decode_indices(refined.codes)
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == refined.captions
    # the returned images are decoded from the returned codes too
    pixels = ((decoded.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    assert all(np.array_equal(np.asarray(im), p.numpy()) for im, p in zip(refined.images, pixels))
    # text -> image: the input caption is the template of the re-encoding of the prior's image
    caption = "The red 7 is on the upper left."
    t2i = pipe(num_samples=2, caption=caption, seed=1)
    drawn, _ = stage1.decode_indices(pipe(num_samples=2, caption=caption, seed=1, refine=False).codes)
    template = tokenize_captions(tokenizer, [caption], stage1.config.max_text_length).expand(2, -1)
    assert torch.equal(t2i.codes[:, 64:], stage1.encode_to_indices(drawn, template)[:, 64:])
    with pytest.raises(TypeError, match="refine"):
        pipe(num_samples=1, refine="yes")


def test_code_log_probs_are_the_teacher_forced_log_probabilities_in_either_order(prior):
    codes = prior.sample_codes(2, generator_seed=0)  # (2, 72): 64 image codes, then 8 text codes
    for text_first in (False, True):
        sequence = prior.to_sequence(codes, text_first)
        expected = prior(sequence).logits[:, :-1].log_softmax(-1).gather(-1, sequence[:, 1:, None])[..., 0]
        got = prior.code_log_probs(codes, text_first)
        order = prior._text_first_order(codes.device) if text_first else torch.arange(72)
        torch.testing.assert_close(got[:, order], expected)  # canonical order back to the sequence's
    assert (got <= 0).all()


def test_caption_drafts_keep_the_draft_the_prior_agrees_on_best(tokenizer, prior, monkeypatch):
    """caption_drafts: the first draft is the one-caption sample; the kept pair scores at least as high under the
    prior's two orders, keeps the first call's image codes, and its codes decode to the returned caption."""
    from mmquant.pipelines import MXQVAEPipeline, pipeline_mxqvae

    stage1 = MXQVAEModel(prior.config.stage1_config).eval()
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)

    def score(codes):
        return prior.code_log_probs(codes)[:, 64:].sum(1) + prior.code_log_probs(codes, True)[:, :64].sum(1)

    one = pipe(num_samples=3, seed=4, caption_drafts=1)
    best = pipe(num_samples=3, seed=4, caption_drafts=6)
    assert torch.equal(best.codes[:, :64], one.codes[:, :64])
    assert (score(best.codes) >= score(one.codes) - 1e-4).all()
    _, ids = stage1.decode_indices(best.codes)
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == best.captions
    assert torch.equal(pipe(num_samples=3, seed=4, caption_drafts=6).codes, best.codes)  # seeded
    # image -> text drafts too; text -> image has no caption to draw
    image = best.images[0]
    assert len(pipe(image=image, num_samples=2, seed=0, caption_drafts=3).captions) == 2
    caption = "The red 7 is on the upper left."
    assert torch.equal(
        pipe(caption=caption, seed=1, caption_drafts=5).codes, pipe(caption=caption, seed=1, caption_drafts=1).codes
    )
    # more rows than the prior samples in one call: drafted in chunks
    monkeypatch.setattr(pipeline_mxqvae, "MAX_NUM_SAMPLES", 8)
    assert pipe(num_samples=5, seed=0, caption_drafts=4).codes.shape == (5, 72)
    with pytest.raises(ValueError, match="caption_drafts=0"):
        pipe(num_samples=1, caption_drafts=0)


def test_caption_grammar_keeps_the_best_draft_whose_caption_parses(tmp_path, tokenizer, prior, monkeypatch):
    """caption_grammar="caption_mnist" (saved with the pipeline): among a row's drafts, one whose caption parses is
    kept when there is one; with every draft parsing, or none, the prior's best draft as without the option."""
    from mmquant.pipelines import MXQVAEPipeline, pipeline_mxqvae

    assert pipeline_mxqvae._parses("The red 7 is on the upper left, and the blue 2 is on the lower right.")
    assert not pipeline_mxqvae._parses("The red 7 is on the upper right, and the red 7 is on the top right.")
    stage1 = MXQVAEModel(prior.config.stage1_config).eval()
    plain = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, caption_grammar="caption_mnist")
    pipe.save_pretrained(tmp_path / "pipe")
    assert MXQVAEPipeline.from_pretrained(tmp_path / "pipe").config.caption_grammar == "caption_mnist"
    kwargs = dict(num_samples=4, seed=3, caption_drafts=6)
    expected = plain(**kwargs)
    for everything in (True, False):
        monkeypatch.setattr(pipeline_mxqvae, "_parses", lambda caption, answer=everything: answer)
        assert torch.equal(pipe(**kwargs).codes, expected.codes)
    seen = []

    def some(caption):  # a grammar that takes every other caption the drafts decode to
        seen.append(caption)
        return len(seen) % 2 == 0

    monkeypatch.setattr(pipeline_mxqvae, "_parses", some)
    kept = pipe(**kwargs).captions
    rows = [seen[i * 6 : (i + 1) * 6] for i in range(4)]
    accepted = [[c for j, c in enumerate(row) if j % 2 == 1] for row in rows]
    assert all(caption in ok for caption, ok in zip(kept, accepted)), (kept, accepted)
    with pytest.raises(ValueError, match="caption_grammar='cub'"):
        MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, caption_grammar="cub")


def test_pipeline_samples_saves_and_loads(tmp_path, tokenizer, prior):
    from mmquant.pipelines import MXQVAEPipeline

    stage1 = MXQVAEModel(prior.config.stage1_config).eval()
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)
    out = pipe(num_samples=2, seed=0)
    assert len(out.images) == 2 and out.images[0].size == (64, 64) and all(isinstance(c, str) for c in out.captions)
    assert torch.equal(pipe(num_samples=2, seed=0).codes, out.codes)  # seeded
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = MXQVAEPipeline.from_pretrained(tmp_path / "pipe")
    again = loaded(num_samples=2, seed=0)
    assert torch.equal(again.codes, out.codes) and again.captions == out.captions
    text_to_image = pipe(num_samples=2, caption="The red 7 is on the upper left.", seed=1)
    image_to_text = pipe(num_samples=2, image=out.images[0], seed=1)
    assert len(text_to_image.images) == len(image_to_text.captions) == 2
    grid = MXQVAEPipeline.save_grid(out, tmp_path / "grid.png")
    assert grid.stat().st_size > 0
    with pytest.raises(ValueError, match="at most one"):
        pipe(caption="The red 7.", image=out.images[0])
    with pytest.raises(ValueError, match="expected 64x64"):
        pipe(image=out.images[0].resize((32, 32)))
    long_caption = "The red 7 is on the upper left, " * 10 + "and this."
    with pytest.raises(ValueError, match="max_length=48"):
        pipe(caption=long_caption)
    assert mmquant.MXQVAEPipeline is MXQVAEPipeline


def test_default_temperature_is_saved_with_the_pipeline_and_used_without_a_temperature(tmp_path, tokenizer, prior):
    """`default_temperature` (model_index.json): the temperature of a call that gives none; an explicit one and
    PAPER_SAMPLING (temperature 1) still win."""
    from mmquant.pipelines import MXQVAEPipeline

    stage1 = MXQVAEModel(prior.config.stage1_config).eval()
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, default_temperature=0.5)
    pipe.save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["default_temperature"] == 0.5
    loaded = MXQVAEPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.config.default_temperature == 0.5
    kwargs = dict(num_samples=3, seed=4, caption_drafts=1)
    default = loaded(**kwargs).codes
    assert torch.equal(default, loaded(temperature=0.5, **kwargs).codes)
    assert not torch.equal(default, loaded(temperature=1.0, **kwargs).codes)
    paper = loaded(num_samples=3, seed=4, **MXQVAEPipeline.PAPER_SAMPLING).codes
    assert torch.equal(paper, prior.sample_codes(3, generator_seed=4, top_k=10, temperature=1.0))
    # without the option (as a pipeline saved before it loads): 1.0
    assert MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer).config.default_temperature == 1.0
    with pytest.raises(ValueError, match="default_temperature=0"):
        MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, default_temperature=0)


def test_sincos_positions_start_the_learned_positions(tokenizer):
    from mmquant.modules.positions import sincos_positions_1d, sincos_positions_2d

    one = sincos_positions_1d(5, 8)
    assert one.shape == (5, 8) and torch.equal(one[0, 1::2], torch.ones(4))  # cos(0) = 1, sin(0) = 0
    torch.testing.assert_close(one[3, 0], torch.tensor(3.0).sin())
    two = sincos_positions_2d(2, 3, 8)  # row-major: token (r, c) -> r * 3 + c
    torch.testing.assert_close(two[4, :4], sincos_positions_1d(2, 4)[1])  # row 1
    torch.testing.assert_close(two[4, 4:], sincos_positions_1d(3, 4)[1])  # column 1
    assert len({tuple(row.tolist()) for row in two}) == 6  # every grid cell has its own position
    with pytest.raises(ValueError, match="dim=6"):
        sincos_positions_2d(2, 2, 6)
    model = MXQVAEModel(tiny_config(tokenizer))
    n_img = model.config.num_image_tokens
    torch.testing.assert_close(model.position_embedding[0, :n_img], sincos_positions_2d(8, 8, 16))
    text = sincos_positions_1d(8, 16).roll(4, dims=1)  # the text positions, shifted off the image's pattern
    torch.testing.assert_close(model.position_embedding[0, n_img:], text)
    assert model.position_embedding.requires_grad
    with pytest.raises(ValueError, match="hidden_size=18"):
        tiny_config(tokenizer, hidden_size=18)


def test_removed_position_init_loads_as_before_and_fails_for_other_values(tokenizer):
    """Configs saved before `position_init` was removed hold "sincos" (what the model always does): they load, and the
    key is dropped; any other value was never shipped and is refused with a message that names the key."""
    legacy = tiny_config(tokenizer).to_dict() | {"position_init": "sincos"}
    config = MXQVAEConfig(**legacy)
    assert not hasattr(config, "position_init") and "position_init" not in config.to_dict()
    assert config.to_dict() == tiny_config(tokenizer).to_dict()
    with pytest.raises(ValueError, match="position_init='zeros': no longer an option"):
        tiny_config(tokenizer, position_init="zeros")


def test_fusion_input_norm_normalises_each_modality_and_round_trips(tmp_path, tokenizer):
    model = MXQVAEModel(tiny_config(tokenizer, fusion_input_norm=True)).eval()
    x, ids = batch(tokenizer)
    seen = {}
    model.fusion.register_forward_pre_hook(lambda module, args: seen.update(tokens=args[0]))
    indices = model.encode_to_indices(x * 50, ids)  # content scale no longer drowns the positions
    n_img = model.config.num_image_tokens
    content = seen["tokens"] - model.position_embedding  # (B, N, d) the normalised tokens
    for part in (content[:, :n_img], content[:, n_img:]):
        torch.testing.assert_close(part.mean(-1), torch.zeros(part.shape[:2]), atol=1e-5, rtol=0)
        torch.testing.assert_close(part.std(-1, unbiased=False), torch.ones(part.shape[:2]), atol=1e-3, rtol=0)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.fusion_input_norm and torch.equal(loaded.encode_to_indices(x * 50, ids), indices)
    assert not hasattr(MXQVAEModel(tiny_config(tokenizer)), "image_token_norm")  # off by default (older checkpoints)


def test_caption_conditioned_prior_samples_codes_after_its_caption(tmp_path, tokenizer, prior):
    from mmquant.pipelines import MXQVAEPipeline

    stage1_config = tiny_config(tokenizer)
    torch.manual_seed(0)
    config = MXQVAEPriorConfig(stage1_config=stage1_config.to_dict(), n_layer=1, n_head=2, n_embd=32,
                               caption_vocab_size=stage1_config.vocab_size)  # fmt: skip
    # the codes' 32 tokens and 2 start tokens, the caption start token and the words; the caption before the codes
    assert config.vocab_size == 32 + 2 + 1 + stage1_config.vocab_size
    assert config.caption_length == 1 + 48 and config.n_positions == 1 + 48 + 1 + 72
    captioned = MXQVAEPriorForCausalLM(config).eval()
    ids = tokenize_captions(tokenizer, ["The red 7 is on the upper left.", "The blue 2 is on the left."], 48)
    codes = torch.randint(0, 32, (2, 72))
    seq = captioned.to_sequence(codes, caption_ids=ids)
    assert seq.shape == (2, 49 + 73) and seq[0, 0] == config.caption_token_id and seq[0, 49] == 32
    assert torch.equal(seq[:, 1:49] - config.caption_token_id - 1, ids) and torch.equal(seq[:, 50:], codes)
    assert torch.equal(captioned.from_sequence(seq), codes)
    drawn = captioned.sample_codes(3, caption_ids=ids, generator_seed=0)
    assert drawn.shape == (6, 72) and drawn.max() < 32  # only codes are sampled
    assert torch.equal(captioned.sample_codes(3, caption_ids=ids, generator_seed=0), drawn)  # seeded
    two_calls = captioned.sample_codes(2, caption_ids=ids[:1], generator_seed=0, text_temperature=0.2)
    assert two_calls.shape == (2, 72)
    with pytest.raises(ValueError, match="caption_ids: required"):
        captioned.sample_codes(2)
    with pytest.raises(ValueError, match="caption_ids: required"):
        prior.sample_codes(2, caption_ids=ids)  # the paper's prior has no caption
    with pytest.raises(ValueError, match="after the caption alone"):
        captioned.sample_codes(2, caption_ids=ids, text_first=True)
    with pytest.raises(ValueError, match="no unconditional branch"):
        captioned.sample_codes(2, caption_ids=ids, guidance_scale=2.0)
    with pytest.raises(ValueError, match="max_text_length=48"):
        captioned.to_sequence(codes, caption_ids=ids[:, :10])
    with pytest.raises(ValueError, match="caption_vocab_size"):
        MXQVAEPriorConfig(stage1_config=stage1_config.to_dict(), caption_vocab_size=-1)

    # in the pipeline: text -> image samples from the caption prior; the rest from the paper's prior, unchanged
    stage1 = MXQVAEModel(stage1_config).eval()
    plain = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)
    pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, caption_prior=captioned)
    assert torch.equal(pipe(num_samples=2, seed=0).codes, plain(num_samples=2, seed=0).codes)
    caption = "The red 7 is on the upper left."
    out = pipe(num_samples=2, caption=caption, seed=1, refine=False, text_temperature=None)
    expected = captioned.sample_codes(2, caption_ids=ids[:1], generator_seed=1, top_k=10)
    assert torch.equal(out.codes, expected)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = MXQVAEPipeline.from_pretrained(tmp_path / "pipe")
    assert torch.equal(
        loaded(num_samples=2, caption=caption, seed=1).codes, pipe(num_samples=2, caption=caption, seed=1).codes
    )
    with pytest.raises(ValueError, match="caption-conditioned"):
        MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer, caption_prior=prior)

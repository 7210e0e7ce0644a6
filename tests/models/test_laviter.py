"""LAViTeR on tiny configs: the losses of each training phase, what they train and what they leave frozen, the
generator cascade, cached caption decoding, Auto-class round trips and input errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

import mmquant  # noqa: F401  (registers the Auto classes)
from mmquant import LaviterConfig, LaviterModel, create_model
from mmquant.losses import damsm_loss, word_region_scores
from mmquant.models.laviter.modeling_laviter import _pixel_loss

VOCAB, LENGTH, SIZE = 20, 12, 16
TEXT = dict(vocab_size=VOCAB, max_length=LENGTH, embed_dim=16, num_heads=2, intermediate_size=32)


def tiny(**overrides) -> LaviterModel:
    torch.manual_seed(0)
    return create_model("laviter-test", text_config=TEXT, **overrides)


def batch(b: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(b, 3, SIZE, SIZE, generator=g) * 2 - 1
    ids = torch.randint(5, VOCAB, (b, LENGTH), generator=g)
    ids[:, 0] = 1  # [BOS]
    lengths = torch.randint(4, LENGTH + 1, (b,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        ids[i, n - 1] = 2  # [EOS]
        ids[i, n:] = 0  # [PAD]
    return pixels, ids


def grads(model, loss) -> dict[str, bool]:
    """Per top-level module: does any parameter get a non-zero gradient from ``loss``?"""
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    out = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        out[top] = out.get(top, False) or (p.grad is not None and bool(p.grad.abs().sum() > 0))
    return out


def test_vta_phase_trains_only_the_encoders():
    model = tiny()
    model.set_phase("vta")
    out = model(*batch())
    assert torch.isfinite(out.loss) and out.loss == out.vta_loss
    assert out.tim_loss is None and out.itm_loss is None
    got = grads(model, out.loss)
    assert got == {"image_encoder": True, "text_encoder": True, "generator": False, "captioner": False}
    assert not any(p.requires_grad for p in model.generator.parameters())


def test_generators_phase_trains_generator_and_captioner_on_frozen_features():
    model = tiny()
    model.set_phase("generators")
    model.train()
    assert not model.image_encoder.training and model.generator.training  # frozen BN statistics stay put
    discriminator = model.make_discriminator()
    pixels, ids = batch()
    out = model(pixels, ids, discriminator=discriminator)
    for name in ("tim_loss", "itm_loss", "fake_image_loss", "kl_loss", "generator_adversarial_loss"):
        assert torch.isfinite(getattr(out, name)), name
    assert out.vta_loss is None and out.fake_text_loss is None
    assert grads(model, out.tim_loss) == {
        "image_encoder": False,
        "text_encoder": False,
        "generator": True,
        "captioner": False,
    }
    assert grads(model, out.itm_loss)["captioner"] and not grads(model, out.itm_loss)["generator"]
    # the generator's adversarial term reaches the discriminator too, which the training loop zeroes before its step
    d_loss = model.discriminator_loss(discriminator, pixels, out)
    discriminator.zero_grad(set_to_none=True)
    model.zero_grad(set_to_none=True)
    d_loss.backward()
    assert torch.isfinite(d_loss) and all(p.grad is not None for p in discriminator.parameters())
    assert all(p.grad is None for p in model.generator.parameters())  # generated images are detached


def test_joint_phase_eq16_and_the_paper_freezing():
    model = tiny()
    model.set_phase("joint")
    out = model(*batch(), discriminator=model.make_discriminator())
    c = model.config
    expected = (
        c.lambda_tim * out.tim_loss
        + c.lambda_itm * out.itm_loss
        + c.lambda_fake_image * out.fake_image_loss
        + c.lambda_fake_text * out.fake_text_loss
        + c.lambda_vta * out.vta_loss
    )
    assert torch.allclose(out.loss, expected)
    frozen = c.captioner_frozen_layers
    assert not any(p.requires_grad for p in model.captioner.decoder.transformer.h[0].parameters())
    assert not any(p.requires_grad for p in model.captioner.encoder.layers[0].parameters())
    assert all(p.requires_grad for p in model.captioner.decoder.transformer.h[frozen].parameters())
    # L_ri-ft (generated captions against real images) trains the encoders; the captions are samples (detached)
    got = grads(model, out.fake_text_loss)
    assert got["image_encoder"] and got["text_encoder"] and not got["captioner"] and not got["generator"]
    got = grads(model, out.fake_image_loss)  # L_fi-rt: generated images against real captions
    assert got["generator"] and got["image_encoder"] and got["text_encoder"] and not got["captioner"]
    for p in model.captioner.decoder.transformer.h[0].parameters():
        assert p.grad is None


def test_frozen_image_backbone_trains_only_its_output_layers():
    model = tiny()
    model.set_phase("joint", train_image_backbone=False)  # the paper's LAViTeR-(F)
    trainable = {n for n, p in model.image_encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("region_proj", "global_proj")) for n in trainable)


def test_ablations_skip_the_unused_branch():
    model = tiny(lambda_tim=0.0, lambda_fake_image=0.0)  # LAViTeR-Img2Txt
    model.set_phase("joint")
    out = model(*batch())
    assert out.generated_images is None and out.fake_text_loss is not None
    vta_only = tiny(lambda_tim=0.0, lambda_itm=0.0, lambda_fake_image=0.0, lambda_fake_text=0.0, lambda_vta=1.0)
    vta_only.set_phase("joint")
    out = vta_only(*batch())
    assert torch.allclose(out.loss, out.vta_loss) and out.caption_logits is None


def test_generator_stage_shapes_and_seeded_sampling():
    config = LaviterConfig(
        vision_config=dict(image_size=32, channels=[8, 8], embed_dim=16),
        text_config=TEXT,
        noise_dim=4,
        condition_dim=4,
        generator_channels=4,
        num_generator_stages=3,
        captioner_num_heads=2,
    )
    model = LaviterModel(config).eval()
    assert config.generator_sizes == [8, 16, 32]
    _, ids = batch(3)
    stages = model.generate_images(ids, all_stages=True, generator=torch.Generator().manual_seed(1))
    assert [tuple(x.shape) for x in stages] == [(3, 3, 8, 8), (3, 3, 16, 16), (3, 3, 32, 32)]
    assert all(x.min() >= -1 and x.max() <= 1 for x in stages)
    again = model.generate_images(ids, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, stages[-1])


def test_place_aware_word_attention_binds_words_to_positions():
    from mmquant.modules.attn_generator import WordAttention

    torch.manual_seed(0)
    h = torch.randn(2, 8, 1, 1).expand(2, 8, 4, 4)  # the same features at every position
    words, mask = torch.randn(2, 5, 16), torch.ones(2, 5)
    plain = WordAttention(8, 16)(h, words, mask)  # (2, 8, 4, 4): one context everywhere
    assert torch.allclose(plain, plain[..., :1, :1].expand_as(plain))
    placed = WordAttention(8, 16, size=4)(h, words, mask)
    assert not torch.allclose(placed[..., 0, 0], placed[..., 3, 3])  # each place attends for itself
    model = tiny(generator_attention_positions=True).eval()
    assert sum(".position" in n for n, _ in model.generator.named_parameters()) == 1  # one attending stage
    _, ids = batch(2)
    assert model.generate_images(ids).shape == (2, 3, SIZE, SIZE)
    first = tiny(generator_attention_positions=True, generator_first_stage_attention=True).eval()
    assert first.generator.first_attention.position.shape == (1, 16, 8)  # the 4x4 grid, 2 * 4 channels
    assert first.generate_images(ids).shape == (2, 3, SIZE, SIZE)


def test_place_reading_discriminator_and_generator_word_context():
    from mmquant.modules.discriminator import PlaceWords

    torch.manual_seed(0)
    words, mask = torch.randn(2, 6, 16), torch.ones(2, 6)
    mask[1, 4:] = 0
    reader = PlaceWords(16, 8, 4)
    places = reader(words, mask)  # (2, 8, 4, 4): what the words say about each place
    assert places.shape == (2, 8, 4, 4) and not torch.allclose(places[..., 0, 0], places[..., 3, 3])
    padded = words.clone()
    padded[1, 4:] = 100.0  # padding takes no part
    assert torch.allclose(reader(padded, mask), places, atol=1e-6)
    model = tiny(
        generator_attention_positions=True,
        generator_word_context=True,
        discriminator_place_words=True,
        discriminator_swapped_halves=True,
    )
    model.set_phase("generators")
    discriminator = model.make_discriminator()
    assert all(hasattr(d, "place_words") for d in discriminator)
    pixels, ids = batch()
    out = model(pixels, ids, discriminator=discriminator)
    assert out.word_embeds.shape == (4, LENGTH, 16) and out.word_mask.shape == (4, LENGTH)
    g = grads(model, out.loss)
    assert g["generator"] and not g["text_encoder"]
    assert any("word_context" in n and p.grad is not None for n, p in model.generator.named_parameters())
    d_loss = model.discriminator_loss(discriminator, pixels, out)
    model.config.discriminator_swapped_halves = False  # without the swapped-halves mismatched pairs: another loss
    assert not torch.isclose(model.discriminator_loss(discriminator, pixels, out), d_loss)
    d_loss.backward()
    assert all(p.grad is not None for p in discriminator[0].place_words.parameters())
    with pytest.raises(ValueError, match="words, word_mask"):
        discriminator([x.detach() for x in out.generated_images], out.text_embeds)


def test_binding_discriminator_reads_words_in_order_and_rejects_exchanged_quadrants():
    from mmquant.modules.grid_features import exchange_quadrants

    x = torch.arange(16.0).view(1, 1, 4, 4)
    exchanged = exchange_quadrants(x)  # (6, 1, 4, 4): each pair of quadrants exchanged
    assert exchanged.shape == (6, 1, 4, 4) and not any(torch.equal(e, x[0]) for e in exchanged)
    assert torch.equal(exchanged[0, 0, :2], torch.tensor([[2.0, 3.0, 0.0, 1.0], [6.0, 7.0, 4.0, 5.0]]))  # UL <-> UR
    assert all(torch.equal(e.flatten().sort().values, x.flatten()) for e in exchanged)  # the same contents
    model = tiny(discriminator_word_rnn=True, discriminator_exchanged_quadrants=True)
    model.set_phase("generators")
    discriminator = model.make_discriminator()
    pixels, ids = batch()
    out = model(pixels, ids, discriminator=discriminator)
    places = discriminator.read_places(out.word_embeds, out.word_mask)
    assert all(p.shape == (4, 16, 4, 4) for p in places)  # the GRU's reading, at every place
    flipped = discriminator.read_places(out.word_embeds.flip(1), out.word_mask)
    assert not torch.allclose(flipped[0], places[0])  # read in order
    d_loss = model.discriminator_loss(discriminator, pixels, out)
    model.config.discriminator_exchanged_quadrants = False  # without the exchanged-quadrant mismatched pairs
    assert not torch.isclose(model.discriminator_loss(discriminator, pixels, out), d_loss)
    d_loss.backward()
    assert all(p.grad is not None for p in discriminator[0].word_rnn.parameters())


@pytest.mark.parametrize("sample", [False, True])
def test_caption_decoding_with_the_cache_equals_without(sample):
    model = tiny().eval()
    pixels, _ = batch(3)
    kwargs = dict(do_sample=True, top_k=5, temperature=1.5) if sample else {}
    torch.manual_seed(3)
    cached = model.generate_captions(pixels, use_cache=True, **kwargs)
    torch.manual_seed(3)
    uncached = model.generate_captions(pixels, use_cache=False, **kwargs)
    assert cached.shape == (3, LENGTH) and torch.equal(cached, uncached)
    assert (cached[:, 0] == 1).all()


def test_round_trip_through_auto_classes(tmp_path):
    model = tiny().eval()
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is LaviterConfig and config.text_config.vocab_size == VOCAB
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    pixels, ids = batch()
    assert type(loaded) is LaviterModel
    assert torch.equal(loaded.get_image_features(pixels), model.get_image_features(pixels))
    assert torch.equal(loaded.get_text_features(ids), model.get_text_features(ids))
    g = torch.Generator().manual_seed(0)
    images = model.generate_images(ids, generator=g)
    assert torch.equal(loaded.generate_images(ids, generator=torch.Generator().manual_seed(0)), images)
    assert torch.equal(loaded.generate_captions(pixels), model.generate_captions(pixels))


def test_gru_sentence_pooling_reads_words_in_order_and_ignores_padding(tmp_path):
    torch.manual_seed(0)
    model = create_model("laviter-test", text_config={**TEXT, "sentence_pooling": "gru"}).eval()
    pixels, ids = batch()
    words, sentence = model.text_encoder(ids, (ids != 0).long())
    assert words.shape == (4, LENGTH, 16) and sentence.shape == (4, 16)
    # more padding after [EOS] changes nothing
    padded = torch.cat([ids, torch.zeros(4, 3, dtype=ids.dtype)], 1)
    encoder = model.text_encoder
    encoder.position.data = torch.cat([encoder.position.data, torch.zeros(1, 3, 16)], 1)
    assert torch.allclose(encoder(padded, (padded != 0).long())[1], sentence, atol=1e-5)
    encoder.position.data = encoder.position.data[:, :LENGTH]
    # the order of the words matters beyond the positions: a mean of per-word features cannot tell these apart
    encoder.position.data.zero_()
    swapped = ids.clone()
    swapped[:, [1, 2]] = ids[:, [2, 1]]
    mean = tiny().eval().text_encoder
    mean.position.data.zero_()
    assert torch.allclose(mean(ids, (ids != 0).long())[1], mean(swapped, (swapped != 0).long())[1], atol=1e-5)
    assert not torch.allclose(encoder(ids, (ids != 0).long())[1], encoder(swapped, (swapped != 0).long())[1])
    # soft word distributions (the captioner's) take the same path; round trip through the Auto classes
    probs = torch.nn.functional.one_hot(ids, VOCAB).float()
    assert torch.allclose(encoder(None, (ids != 0).long(), word_probs=probs)[1], encoder(ids, (ids != 0).long())[1])
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.text_config.sentence_pooling == "gru"
    assert torch.equal(loaded.get_text_features(ids), model.get_text_features(ids))


def test_generator_word_rnn_reads_the_words_in_order_and_trains_with_the_generator(tmp_path):
    model = tiny(generator_word_rnn=True).eval()
    pixels, ids = batch()
    mask = (ids != 0).long()
    words, sentence = model.text_encoder(ids, mask)
    noise = torch.randn(4, model.config.noise_dim)

    def first_stage(w, m):
        return model.generator(noise, sentence, w, m, torch.Generator().manual_seed(0))[0][0]

    image = first_stage(words, mask)
    # padding after the words changes nothing; the same words in another order change the layout
    padded = torch.cat([words, torch.randn(4, 3, words.shape[-1])], 1)
    assert torch.allclose(first_stage(padded, torch.cat([mask, torch.zeros(4, 3, dtype=mask.dtype)], 1)), image)
    assert not torch.allclose(first_stage(words.flip(1), mask.flip(1).sort(1, descending=True).values), image)
    # it trains with the generator (phase 2), and round-trips through the Auto classes
    model.set_phase("generators")
    model.train()
    out = model(pixels, ids)
    assert model.generator.word_rnn.weight_ih_l0.requires_grad and grads(model, out.tim_loss)["generator"]
    assert model.generator.word_rnn.weight_ih_l0.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.generator_word_rnn and hasattr(loaded.generator, "word_rnn")
    g = [torch.Generator().manual_seed(1) for _ in range(2)]
    assert torch.allclose(
        loaded.generate_images(ids, generator=g[0]), model.generate_images(ids, generator=g[1]), atol=1e-6
    )


def test_models_without_generator_or_captioner():
    model = tiny(use_tim=False, use_itm=False, lambda_tim=0.0, lambda_itm=0.0, lambda_fake_image=0.0,
                 lambda_fake_text=0.0)  # fmt: skip
    assert not hasattr(model, "generator") and not hasattr(model, "captioner")
    pixels, ids = batch()
    with pytest.raises(ValueError, match="use_tim=False"):
        model.generate_images(ids)
    with pytest.raises(ValueError, match="use_itm=False"):
        model.generate_captions(pixels)
    with pytest.raises(ValueError, match="neither a generator nor a captioner"):
        model.set_phase("generators")
        model(pixels, ids)


def test_bf16_autocast_gives_finite_losses():
    model = tiny()
    model.set_phase("joint")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*batch(), discriminator=model.make_discriminator())
    assert torch.isfinite(out.loss)
    out.loss.backward()


def test_damsm_scores_equal_the_explicit_context_vectors():
    g = torch.Generator().manual_seed(1)
    words, regions = torch.randn(3, 5, 4, generator=g), torch.randn(2, 6, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    expected = torch.empty(3, 2)
    for i in range(3):  # AttnGAN's func_attention + words_loss, one caption-image pair at a time
        n = int(mask[i].sum())
        for j in range(2):
            attn = (words[i, :n] @ regions[j].T).softmax(dim=0)  # (T, R): along words
            alpha = (4.0 * attn).softmax(dim=1)  # along regions
            context = alpha @ regions[j]  # (T, D)
            cos = torch.nn.functional.cosine_similarity(context, words[i, :n], dim=-1)
            expected[i, j] = torch.log(torch.exp(5.0 * cos).sum()) / 5.0
    assert torch.allclose(word_region_scores(words, mask, regions, 4.0, 5.0), expected, atol=1e-5)


def test_damsm_scores_prefer_the_paired_caption():
    g = torch.Generator().manual_seed(0)
    regions = torch.randn(4, 6, 8, generator=g)
    words = regions[:, :3] + 0.01 * torch.randn(4, 3, 8, generator=g)  # each caption's words = its image's regions
    mask = torch.ones(4, 3, dtype=torch.long)
    scores = word_region_scores(words, mask, regions, gamma1=10.0, gamma2=5.0)
    assert scores.shape == (4, 4) and (scores.argmax(1) == torch.arange(4)).all()
    # padding words take no part: appending padded garbage changes nothing
    padded = torch.cat([words, 50 * torch.randn(4, 2, 8, generator=g)], dim=1)
    mask2 = torch.cat([mask, torch.zeros(4, 2, dtype=torch.long)], dim=1)
    assert torch.allclose(word_region_scores(padded, mask2, regions, 10.0, 5.0), scores, atol=1e-6)
    aligned = damsm_loss(words, mask, regions.mean(1), regions, regions.mean(1))
    shuffled = damsm_loss(words, mask, regions.mean(1), regions.roll(1, 0), regions.mean(1).roll(1, 0))
    assert aligned < shuffled
    # images no caption describes are extra negatives of the caption's posterior: a copy of each caption's own image
    # makes it ambiguous (more loss), a far-away one changes little, and both halves of a pair are needed
    copies = damsm_loss(
        words, mask, regions.mean(1), regions, regions.mean(1), 10.0, 5.0, 10.0, regions, regions.mean(1)
    )
    far = -regions
    distant = damsm_loss(words, mask, regions.mean(1), regions, regions.mean(1), 10.0, 5.0, 10.0, far, far.mean(1))
    plain = damsm_loss(words, mask, regions.mean(1), regions, regions.mean(1), 10.0, 5.0, 10.0)
    assert copies > distant >= plain and copies - plain > 1.0
    with pytest.raises(ValueError, match="negative_regions, negative_global"):
        damsm_loss(words, mask, regions.mean(1), regions, regions.mean(1), negative_regions=regions)


def test_vta_swapped_negatives_rank_the_image_above_its_swapped_halves():
    model = tiny(vta_swapped_negatives=True)
    model.set_phase("vta")
    pixels, ids = batch()
    with_negatives = model(pixels, ids).vta_loss
    model.config.vta_swapped_negatives = False
    without = model(pixels, ids).vta_loss
    assert torch.isfinite(with_negatives) and with_negatives > without  # more candidates in each caption's softmax
    assert model._encode_with_negatives(pixels)[1] is None
    model.config.vta_exchanged_quadrants = True  # six more per image: each pair of quadrants exchanged
    exchanged = model(pixels, ids).vta_loss
    assert exchanged > without and model._encode_with_negatives(pixels)[1][1].shape[0] == 6 * len(pixels)
    model.config.vta_swapped_negatives = True
    regions, global_features = model._encode_with_negatives(pixels)[1]
    assert regions.shape[0] == global_features.shape[0] == 8 * len(pixels)
    model.config.vta_exchanged_quadrants = model.config.vta_swapped_negatives = False
    # the generated images' matching (L_fi-rt) gets the same negatives, and its gradient reaches the generator
    model.set_phase("generators")
    torch.manual_seed(1)
    plain = model(pixels, ids).fake_image_loss
    model.config.vta_swapped_negatives = True
    torch.manual_seed(1)
    out = model(pixels, ids)
    assert out.fake_image_loss > plain and grads(model, out.fake_image_loss)["generator"]


def phase2_output(**overrides):
    """A tiny model in phase 2 (training mode), a batch and its output (noise seeded with 1)."""
    model = tiny(**overrides)
    model.set_phase("generators")
    model.train()
    pixels, ids = batch()
    torch.manual_seed(1)
    return model, pixels, ids, model(pixels, ids)


def assert_adds_to_tim_loss(model, pixels, ids, out, term: str, weight: float) -> None:
    """`out` (noise seeded with 1) has the `<term>_loss` at `lambda_<term> = weight` in L_TIM: with the weight at 0
    the term is not computed and L_TIM is lower by exactly `weight * <term>_loss`."""
    setattr(model.config, f"lambda_{term}", 0.0)
    torch.manual_seed(1)
    without = model(pixels, ids)
    assert getattr(without, f"{term}_loss") is None
    torch.testing.assert_close(out.tim_loss - without.tim_loss, weight * getattr(out, f"{term}_loss"))


def test_redescription_trains_the_generator_alone_and_reads_the_caption():
    model, pixels, ids, out = phase2_output(lambda_redescription=2.0)
    assert torch.isfinite(out.redescription_loss) and out.redescription_loss > 0
    # only the generator learns from it: the captioner and the encoders read the generated image with fixed weights
    assert grads(model, out.redescription_loss) == {
        "image_encoder": False, "text_encoder": False, "generator": True, "captioner": False,
    }  # fmt: skip
    # it is the captioner's own cross-entropy (eq. 14) on the generated image, and part of L_TIM
    regions, _ = model.image_encoder(out.generated_images[-1])
    expected = model.captioner.loss(model.captioner(regions, ids, (ids != 0).long()), ids)
    torch.testing.assert_close(out.redescription_loss, expected)
    assert_adds_to_tim_loss(model, pixels, ids, out, "redescription", 2.0)
    # in the joint phase it also reaches the text encoder that conditions the generator (as L_fi-rt does), still
    # not the captioner or the image encoder
    model.config.lambda_redescription = 2.0
    model.set_phase("joint")
    out = model(pixels, ids)
    got = grads(model, out.redescription_loss)
    assert got == {"image_encoder": False, "text_encoder": True, "generator": True, "captioner": False}
    with pytest.raises(ValueError, match="lambda_redescription=1.0: .*use_itm=True"):
        tiny(use_itm=False, lambda_itm=0.0, lambda_fake_text=0.0, lambda_redescription=1.0)


def test_image_match_pulls_each_generated_image_to_its_own_real_image():
    model, pixels, ids, out = phase2_output(lambda_image_match=5.0)
    assert torch.isfinite(out.image_match_loss) and out.redescription_loss is None
    got = grads(model, out.image_match_loss)
    assert got == {"image_encoder": False, "text_encoder": False, "generator": True, "captioner": False}
    # InfoNCE over the batch: lowest when each generated image is its own real image, higher when shuffled
    _, real = model.image_encoder(pixels)
    own = model._image_match_loss(real, real)
    shuffled = model._image_match_loss(real.roll(1, 0), real)
    assert own < shuffled and own < torch.log(torch.tensor(4.0))
    assert_adds_to_tim_loss(model, pixels, ids, out, "image_match", 5.0)


def test_pixel_term_pulls_every_stage_to_its_own_real_image():
    model, pixels, ids, out = phase2_output(lambda_pixel=10.0)
    assert torch.isfinite(out.pixel_loss) and out.image_match_loss is None
    assert grads(model, out.pixel_loss) == {
        "image_encoder": False,
        "text_encoder": False,
        "generator": True,
        "captioner": False,
    }
    stages = [F.interpolate(pixels, size=x.shape[-2:], mode="area") for x in out.generated_images]
    assert float(_pixel_loss(stages, pixels)) < 1e-6  # each stage's real image: no loss
    expected = sum(((x - y) ** 2).mean() for x, y in zip(out.generated_images, stages))
    torch.testing.assert_close(out.pixel_loss, expected)
    assert_adds_to_tim_loss(model, pixels, ids, out, "pixel", 10.0)
    with pytest.raises(ValueError, match="lambda_pixel=-1.0"):
        tiny(lambda_pixel=-1.0)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p, i: (p, torch.cat([i, i[:, :2]], dim=1)), "max_text_length=12"),
        (lambda p, i: (p[:, :, :8, :8], i), r"16x16"),
        (lambda p, i: (p[:, :1], i), "3-channel"),
        (lambda p, i: (p, i + VOCAB), "vocab_size"),
        (lambda p, i: (p.double().long(), i), "float"),
        (lambda p, i: (p.masked_fill(p > 0.9, float("nan")), i), "NaN"),
        (lambda p, i: (p[:2], i), "batch"),
    ],
)
def test_bad_inputs_raise_clear_errors(change, match):
    model = tiny()
    pixels, ids = change(*batch())
    with pytest.raises((ValueError, TypeError), match=match):
        model(pixels, ids)


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="embed_dim"):
        LaviterConfig(vision_config=dict(embed_dim=32), text_config=dict(embed_dim=16, num_heads=2))
    with pytest.raises(ValueError, match="num_generator_stages"):
        LaviterConfig(vision_config=dict(image_size=16, channels=[8]), num_generator_stages=3)
    with pytest.raises(ValueError, match="lambda_tim"):
        LaviterConfig(use_tim=False)
    with pytest.raises(ValueError, match="phase"):
        tiny().set_phase("pretrain")
    with pytest.raises(ValueError, match="backbone"):
        LaviterConfig(vision_config=dict(backbone="resnet"))
    with pytest.raises(ValueError, match="generator_attention_positions"):
        LaviterConfig(generator_channels=6, generator_attention_positions=True)
    with pytest.raises(ValueError, match="sentence_pooling"):
        LaviterConfig(text_config=dict(sentence_pooling="max"))


def test_inception_backbone_regions_and_frozen_phase_one(tmp_path):
    """The paper's InceptionV3 encoder (17x17 Mixed_6e regions), with weights read from a local file; in phase 1
    only its output layers train."""
    pytest.importorskip("torchvision", reason="pip install torchvision (a CPU build matching torch)")
    from safetensors.torch import save_file
    from torchvision.models import inception_v3

    weights = tmp_path / "inception.safetensors"
    save_file(
        {k: v.contiguous() for k, v in inception_v3(weights=None, aux_logits=False).state_dict().items()}, weights
    )
    vision = dict(backbone="inception_v3", backbone_weights=str(weights), image_size=SIZE, embed_dim=16)
    model = tiny(vision_config=vision, use_tim=False, lambda_tim=0.0, lambda_fake_image=0.0)
    regions, global_features = model.eval().encode_image(batch(1)[0])
    assert regions.shape == (1, 289, 16) and global_features.shape == (1, 16)
    model.set_phase("vta")
    trainable = {n.split(".")[0] for n, p in model.image_encoder.named_parameters() if p.requires_grad}
    assert trainable == {"region_proj", "global_proj"}
    with pytest.raises(FileNotFoundError, match="backbone_weights"):
        tiny(vision_config={**vision, "backbone_weights": str(tmp_path / "missing.pth")}, use_tim=False,
             lambda_tim=0.0, lambda_fake_image=0.0)  # fmt: skip


def test_digit_grid_backbone_is_frozen_yet_passes_gradients_to_generated_pixels(tmp_path):
    """The Caption MNIST counterpart of the frozen ImageNet encoder: a pretrained digit CNN reads the four quadrants
    and the pooled canvas (5 regions, each with a learned place embedding as large as its normalised content); in
    every phase only its output layers
    train, and the generator still learns
    through it (L_fi-rt reaches the generated pixels)."""
    vision = dict(image_size=SIZE, backbone="digit_grid", channels=[4], grid_feature_dim=3, embed_dim=16)
    model = tiny(vision_config=vision)
    assert model.config.vision_config.num_regions == 5
    pixels, ids = batch()
    regions, global_features = model.eval().encode_image(pixels)
    assert regions.shape == (4, 5, 16) and global_features.shape == (4, 16)
    per_crop = model.image_encoder.grid.crop_features(pixels)  # (B, 5, C * F): what the regions project
    assert per_crop.shape == (4, 5, 3 * 3)
    assert torch.equal(model.image_encoder.grid(pixels), per_crop.flatten(1))  # jWAE's frozen features, unchanged
    encoder = model.image_encoder
    place = encoder.region_position  # (1, 5, D): which crop a region is, at the normalised content's scale
    torch.testing.assert_close(regions, encoder.region_norm(encoder.region_proj(per_crop)) + place)
    assert place.norm(dim=-1).min() > 0.5 * encoder.region_norm(encoder.region_proj(per_crop)).norm(dim=-1).max()
    for phase in ("vta", "joint"):
        model.set_phase(phase)
        trainable = {n.split(".")[0] for n, p in model.image_encoder.named_parameters() if p.requires_grad}
        assert trainable == {"region_proj", "region_norm", "global_proj", "region_position"}, phase
    model.set_phase("joint")
    model.train()
    out = model(pixels, ids)
    assert torch.isfinite(out.loss)
    got = grads(model, out.fake_image_loss)  # generated images matched through the frozen CNN
    assert got["generator"] and not any(p.grad is not None for p in model.image_encoder.grid.parameters())
    # the frozen CNN is part of the checkpoint: it reloads without the pretraining folder
    model.save_pretrained(tmp_path / "grid")
    again = AutoModel.from_pretrained(tmp_path / "grid")
    for name, value in model.image_encoder.grid.state_dict().items():
        assert torch.equal(value, again.image_encoder.grid.state_dict()[name]), name
    with pytest.raises(ValueError, match="quadrant crops"):
        LaviterConfig(vision_config={**vision, "channels": [4, 4, 4, 4]})


@pytest.mark.parametrize("size", [SIZE, 2 * SIZE])
def test_exchanged_quadrant_features_equal_the_encoder_on_exchanged_images(size):
    """The digit-grid encoder reads exchanged-quadrant negatives (vta_exchanged_quadrants) from the quadrants' own
    features and the exchanged pooled canvases: the same regions, global features and pixel gradients as encoding the
    six exchanged images of each image."""
    from mmquant.modules.grid_features import exchange_quadrants

    vision = dict(image_size=size, backbone="digit_grid", channels=[4], grid_feature_dim=3, embed_dim=16)
    encoder = tiny(vision_config=vision).image_encoder
    pixels = (torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
    fast = [t for pair in encoder.with_exchanged_quadrants(pixels) for t in pair]
    (fast_grad,) = torch.autograd.grad(sum(t.square().sum() for t in fast), pixels)
    plain = [*encoder(pixels), *encoder(exchange_quadrants(pixels))]
    (plain_grad,) = torch.autograd.grad(sum(t.square().sum() for t in plain), pixels)
    assert fast[2].shape == (18, 5, 16) and fast[3].shape == (18, 16)
    for got, expected in zip((*fast, fast_grad), (*plain, plain_grad)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_exchanged_crop_features_of_odd_quadrants_read_the_exchanged_canvases():
    """With an odd quadrant side (a CNN without pooling levels), pooling by 2 would mix quadrants: the exchanged
    canvases are read whole, the same as ``crop_features(exchange_quadrants(x))``."""
    from mmquant.modules.grid_features import GridFeatures, exchange_quadrants

    grid = GridFeatures(crop_size=9, channels=[], feature_dim=3)
    pixels = torch.rand(2, 3, 18, 18, generator=torch.Generator().manual_seed(2)) * 2 - 1
    expected = grid.crop_features(exchange_quadrants(pixels))
    assert expected.shape == (12, 5, 9)
    torch.testing.assert_close(grid.exchanged_crop_features(pixels), expected)


def test_region_place_classifier_learns_on_real_regions_and_trains_only_the_generator_on_generated_ones():
    """`place_classifier="regions"`: one linear head on the image encoder's regions pooled to the quadrants (here a
    4x4 grid of CNN regions), its classification of the real regions training the head alone and that of the
    generated images' regions (fixed weights) the generator alone; the discriminators get no head; the labels are
    required without a discriminator too."""
    model = tiny(place_label_classes=[3, 2], lambda_place_labels=2.0, place_classifier="regions")
    model.set_phase("generators")
    assert not hasattr(model.make_discriminator()[0], "place_labels")
    pixels, ids = batch()
    labels = torch.tensor([[[0, 1], [2, 0]], [[1, 1], [0, 0]], [[2, 1], [1, 0]], [[0, 0], [0, 1]]])
    labels = torch.stack([labels, labels.clamp(max=1)], dim=-1)  # (B, 2, 2, 2)
    out = model(pixels, ids, place_labels=labels)
    # the real images' term, by hand: regions (B, 16, D) averaged over each quadrant's 2x2 regions
    regions, _ = model.image_encoder(pixels)
    grid = regions.view(4, 4, 4, -1)  # (B, rows, columns, D)
    quadrants = torch.stack([grid[:, r : r + 2, c : c + 2].mean((1, 2)) for r in (0, 2) for c in (0, 2)], dim=1)
    logits = model.place_classifier(quadrants)  # (B, 4, 5)
    flat = labels.view(4, 4, 2)
    expected = (
        F.cross_entropy(logits[..., :3].transpose(1, 2), flat[..., 0])
        + F.cross_entropy(logits[..., 3:].transpose(1, 2), flat[..., 1])
    ) / 2
    torch.testing.assert_close(out.place_classifier_loss, expected)
    assert {k for k, v in grads(model, out.place_classifier_loss).items() if v} == {"place_classifier"}
    assert {k for k, v in grads(model, out.place_label_loss).items() if v} == {"generator"}
    with pytest.raises(ValueError, match="by the regions"):
        model(pixels, ids)
    assert model(pixels, ids, return_loss=False).place_label_loss is None  # no loss asked: no labels needed


def test_place_label_classifier_learns_on_real_images_and_trains_the_generator():
    """AC-GAN's auxiliary classifier (`place_label_classes`): the discriminators classify each quadrant of the real
    images in their own loss; the generator's L_TIM gets the classification of its images against the same labels;
    labels must be given, of the right shape and range."""
    from mmquant.data.caption_grammar import place_labels

    model = tiny(place_label_classes=[3, 2], lambda_place_labels=2.0)
    model.set_phase("generators")
    discriminator = model.make_discriminator()
    pixels, ids = batch()
    labels = torch.tensor([[[0, 1], [2, 0]], [[1, 1], [0, 0]], [[2, 1], [1, 0]], [[0, 0], [0, 1]]])  # (B, 2, 2)
    labels = torch.stack([labels, labels.clamp(max=1)], dim=-1)  # (B, 2, 2, 2): classes 3 and 2
    out = model(pixels, ids, discriminator=discriminator, place_labels=labels)
    assert torch.isfinite(out.place_label_loss) and out.place_label_loss > 0
    expected = discriminator.place_label_loss(list(out.generated_images), labels)
    torch.testing.assert_close(out.place_label_loss, expected)
    assert grads(model, out.place_label_loss)["generator"]
    # the discriminators' loss: eq. 10 plus 2.0 x the classification of the real images
    d_loss = model.discriminator_loss(discriminator, pixels, out, labels)
    real = [F.interpolate(pixels, size=x.shape[-2:], mode="area") for x in out.generated_images]
    model.config.place_label_classes = None
    plain = model.discriminator_loss(discriminator, pixels, out)
    model.config.place_label_classes = [3, 2]
    torch.testing.assert_close(d_loss, plain + 2.0 * discriminator.place_label_loss(real, labels))
    d_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator[0].place_labels.parameters())
    logits = discriminator[-1].place_label_logits(real[-1])
    assert [tuple(z.shape) for z in logits] == [(4, 3, 2, 2), (4, 2, 2, 2)]
    # the labels are required, of shape (B, 2, 2, A) and within the class counts
    with pytest.raises(ValueError, match="place_labels: this model classifies each quadrant"):
        model(pixels, ids, discriminator=discriminator)
    with pytest.raises(ValueError, match=r"place_labels: expected shape \(4, 2, 2, 2\)"):
        model(pixels, ids, discriminator=discriminator, place_labels=labels[..., :1])
    with pytest.raises(ValueError, match=r"\[0, place_label_classes\[i\]\)"):
        model(pixels, ids, discriminator=discriminator, place_labels=labels + 1)
    with pytest.raises(TypeError, match="place_labels: expected an integer tensor"):
        model(pixels, ids, discriminator=discriminator, place_labels=labels.float())
    assert model(pixels, ids).place_label_loss is None  # without a discriminator: no classification, no labels
    with pytest.raises(ValueError, match="place_label_classes"):
        tiny(place_label_classes=[1, 3])
    with pytest.raises(ValueError, match="place_classifier='heads'"):
        tiny(place_label_classes=[3, 2], place_classifier="heads")
    # Caption MNIST captions -> (digit + 1, colour + 1) per quadrant, 0 where empty
    got = place_labels(
        ["The red 3 is on the upper left, the 7 on the bottom right is blue."], ("white", "red", "blue")
    )
    want = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    want[0, 0, 0], want[0, 1, 1] = torch.tensor([4, 2]), torch.tensor([8, 3])
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="no quadrant"):
        place_labels(["This is white 7."], ("white",))

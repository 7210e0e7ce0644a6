"""jWAE on tiny configs: every loss term finite with gradients where expected, the VSE++ and jWAE-MSE variants, the
latent moving toward the prior under the adversarial terms, cached greedy captioning equal to teacher forcing,
Auto-class round trips, bf16 autocast, and clear errors on bad inputs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

import mmquant
from mmquant import JWAEConfig, JWAEModel
from mmquant.data.caption_grammar import caption_vocabulary
from mmquant.data.tokenizer import build_word_tokenizer
from mmquant.losses import critic_loss, gaussian_frechet_distance

COLORS = ("white", "red", "green", "blue")


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer(caption_vocabulary(COLORS), model_max_length=24)


def tiny(tokenizer, **overrides) -> JWAEConfig:
    fields = dict(
        image_size=16,
        image_channels=[4, 8],
        word_embed_dim=8,
        text_hidden_size=16,
        latent_dim=8,
        critic_hidden_size=16,
        max_text_length=24,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        unk_token_id=tokenizer.unk_token_id,
    )
    return JWAEConfig(**(fields | overrides))


def batch(tokenizer, n=4):
    captions = ["The red 7 is on the upper left.", "This is white 3.", "There is a blue 0 on the bottom right."]
    enc = tokenizer((captions * n)[:n], padding="max_length", max_length=24, return_tensors="pt")
    return torch.rand(n, 3, 16, 16) * 2 - 1, enc.input_ids, enc.attention_mask


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_every_loss_term_is_finite_and_trains_what_it_should(tokenizer):
    model = JWAEModel(tiny(tokenizer))
    critic = model.make_critic()
    x, ids, mask = batch(tokenizer)
    out = model(x, ids, mask, critic=critic)
    terms = ("image_reconstruction_loss", "text_reconstruction_loss", "image_prior_loss", "text_prior_loss")
    for name in (*terms, "ranking_loss", "loss"):
        assert torch.isfinite(out[name]), name
    assert out.image_embeds.shape == out.text_embeds.shape == (4, 8)
    longest = int(mask.sum(1).max())  # the decoder runs up to the batch's longest caption, not over padding
    assert out.image_reconstruction.shape == x.shape and out.text_logits.shape == (4, longest - 1, len(tokenizer))
    # each term reaches exactly the parameters it should
    expected = {
        "image_reconstruction_loss": {"image_encoder", "image_flat", "image_decoder"},
        "text_reconstruction_loss": {"text_encoder", "text_decoder"},
        "image_prior_loss": {"image_encoder", "image_flat"},
        "text_prior_loss": {"text_encoder"},
        "ranking_loss": {"image_encoder", "image_flat", "text_encoder"},
    }
    for name, parts in expected.items():
        model.zero_grad()
        out = model(x, ids, mask, critic=critic)
        out[name].backward()
        reached = {
            n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
        }
        # the flat-latent layer is one module with two directions; its decoder half counts as image_decoder's
        assert reached - {"image_flat"} == parts - {"image_flat"}, name
        assert all(g is None for g in _grads(critic)), f"{name} must not train the critic"
    # the critic's step: gradients on the critic only
    model.zero_grad()
    out = model(x, ids, mask)
    critic_loss(critic, torch.cat([out.image_embeds, out.text_embeds]), torch.randn(8, 8)).backward()
    assert all(g is not None for g in _grads(critic))
    assert all(p.grad is None for p in model.parameters())


def test_decoder_loss_ignores_trailing_padding(tokenizer):
    """Dropping the all-padding columns changes nothing: the loss equals the decoder's run over the full length."""
    model = JWAEModel(tiny(tokenizer, word_dropout=0.0)).eval()
    x, ids, mask = batch(tokenizer)
    out = model(x, ids, mask)
    full = model.text_decoder(ids[:, :-1], out.text_embeds)  # (B, L - 1, V)
    assert full.shape[1] > out.text_logits.shape[1]
    expected = torch.nn.functional.cross_entropy(
        full.flatten(0, 1), ids[:, 1:].flatten(), ignore_index=model.config.pad_token_id
    )
    assert torch.allclose(out.text_reconstruction_loss, expected, atol=1e-6)


def test_image_caption_head_trains_only_the_decoder(tokenizer):
    """lambda_image_caption > 0: g_t also decodes the caption from the detached image latent; the term reaches the
    text decoder and nothing else, so the embeddings train exactly as without it."""
    model = JWAEModel(tiny(tokenizer, lambda_image_caption=0.5))
    x, ids, mask = batch(tokenizer)
    out = model(x, ids, mask)
    assert out.image_caption_logits.shape == out.text_logits.shape
    assert torch.isfinite(out.image_caption_loss)
    c = model.config
    expected = (
        c.lambda_image_reconstruction * out.image_reconstruction_loss
        + c.lambda_text_reconstruction * out.text_reconstruction_loss
        + c.lambda_ranking * out.ranking_loss
        + c.lambda_image_caption * out.image_caption_loss
    )
    assert torch.allclose(out.loss, expected)
    model.zero_grad()
    out.image_caption_loss.backward()
    reached = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"text_decoder"}
    # a decoder exists for the head alone, and the paper's setting has no head
    only_head = JWAEModel(tiny(tokenizer, lambda_text_reconstruction=0, lambda_image_caption=1.0))
    out = only_head(x, ids, mask)
    assert out.text_logits is None and out.image_caption_loss is not None
    assert JWAEModel(tiny(tokenizer))(x, ids, mask).image_caption_loss is None


def test_grid_features_are_frozen_carry_colour_by_channel_and_are_saved(tmp_path, tokenizer):
    """image_input="grid_features": a frozen CNN reads each quadrant and the pooled canvas per colour channel; the
    linear encoder and the feature decoder train, the CNN never does, and save/load keeps its weights."""
    config = tiny(tokenizer, image_input="grid_features", grid_feature_channels=[4], grid_feature_dim=3)
    model = JWAEModel(config)
    assert config.encoded_feature_dim == 5 * 3 * 3
    x, ids, mask = batch(tokenizer)
    out = model(x, ids, mask, critic=model.make_critic())
    assert out.image_reconstruction.shape == (4, 45) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.grid_features.parameters())
    assert model.image_encoder.weight.grad is not None and model.image_decoder[0].weight.grad is not None
    features = model.grid_features(x)  # (B, 5 * 3 * 3), ordered (crop, channel, feature)
    assert torch.allclose(model.get_image_features(x), model.image_encoder(features))

    # a digit drawn in the red channel of the upper-left quadrant: only the red slots of that crop and of the
    # pooled canvas change
    blank = -torch.ones(1, 3, 16, 16)
    red = blank.clone()
    red[0, 0, 2:6, 2:6] = 1.0
    changed = (model.grid_features(red) - model.grid_features(blank)).view(5, 3, 3).abs().sum(-1) > 0
    assert not changed[1:4].any() and not changed[:, 1:].any()  # other quadrants, green and blue: unchanged

    model.grid_features.cnn.proj.weight.data.add_(1.0)  # as if loaded from a pretrained classifier
    model.save_pretrained(tmp_path)
    loaded = JWAEModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.grid_features.cnn.proj.weight, model.grid_features.cnn.proj.weight)
    loaded(x, ids, mask).loss.backward()  # frozen in a loaded model too: no gradient reaches the CNN
    assert all(p.grad is None for p in loaded.grid_features.parameters())
    with pytest.raises(ValueError, match="grid_feature_channels"):
        tiny(tokenizer, image_input="grid_features", image_size=20, grid_feature_channels=[4, 4])


def test_grid_features_precomputed_once_give_the_same_model_outputs(tokenizer):
    """A grid-features model also takes its frozen features precomputed (image_features=model.grid_features(x)),
    as the trainer feeds them after RetrievalPairs.with_image_features: same latents, losses and gradients."""
    from mmquant.data.retrieval_pairs import RetrievalPairs

    model = JWAEModel(tiny(tokenizer, image_input="grid_features", grid_feature_channels=[4], grid_feature_dim=3))
    x, ids, mask = batch(tokenizer)
    pairs = RetrievalPairs(
        ids, ["c"] * 4, torch.arange(4), images=((x + 1) * 127.5).round().to(torch.uint8)
    ).with_image_features(model.grid_features, batch_size=3)
    features = pairs.image_inputs(torch.arange(4))["image_features"]
    assert torch.equal(features, model.grid_features(((x + 1) * 127.5).round() / 127.5 - 1.0))
    torch.manual_seed(0)
    from_pixels = model(((x + 1) * 127.5).round() / 127.5 - 1.0, ids, mask)
    torch.manual_seed(0)
    from_features = model(input_ids=ids, attention_mask=mask, image_features=features)
    assert torch.equal(from_pixels.image_embeds, from_features.image_embeds)
    assert torch.equal(from_pixels.loss, from_features.loss)
    with pytest.raises(ValueError, match="pixel_values= or image_features="):
        model(x, ids, mask, image_features=features)
    with pytest.raises(ValueError, match="image_features"):
        model(input_ids=ids, image_features=torch.randn(4, 7))  # not the 45 grid features
    with pytest.raises(ValueError, match="hold features already"):
        pairs.with_image_features(model.grid_features)


def test_without_a_critic_the_prior_terms_are_left_out(tokenizer):
    model = JWAEModel(tiny(tokenizer))
    out = model(*batch(tokenizer))
    assert out.image_prior_loss is None and out.text_prior_loss is None
    c = model.config
    expected = (
        c.lambda_image_reconstruction * out.image_reconstruction_loss
        + c.lambda_text_reconstruction * out.text_reconstruction_loss
        + c.lambda_ranking * out.ranking_loss
    )
    assert torch.allclose(out.loss, expected)


def test_vsepp_baseline_has_no_decoders_and_mse_variant(tokenizer):
    zero = dict(lambda_image_reconstruction=0, lambda_text_reconstruction=0, lambda_image_prior=0, lambda_text_prior=0)
    vsepp = JWAEModel(tiny(tokenizer, **zero))
    assert not hasattr(vsepp, "image_decoder") and not hasattr(vsepp, "text_decoder")
    assert not vsepp.config.uses_prior
    out = vsepp(*batch(tokenizer))
    assert torch.allclose(out.loss, out.ranking_loss)
    mse = JWAEModel(tiny(tokenizer, ranking_loss="mse"))
    out = mse(*batch(tokenizer))
    assert torch.allclose(out.ranking_loss, ((out.image_embeds - out.text_embeds) ** 2).mean())
    with pytest.raises(ValueError, match="generate_captions"):
        vsepp.generate_captions(torch.randn(2, 8))


def _train_features_model(prior_weight: float, steps: int = 150) -> tuple[float, float]:
    """A tiny precomputed-feature jWAE whose encoder starts far from the prior; Fréchet distance before / after."""
    torch.manual_seed(0)
    config = JWAEConfig(
        image_input="features",
        image_feature_dim=12,
        image_decoder_hidden_size=16,
        vocab_size=16,
        max_text_length=8,
        word_embed_dim=8,
        text_hidden_size=16,
        latent_dim=4,
        critic_hidden_size=32,
        lambda_image_prior=prior_weight,
        lambda_text_prior=prior_weight,
        lambda_image_reconstruction=0.0,
        lambda_text_reconstruction=0.0,
    )
    model = JWAEModel(config)
    with torch.no_grad():
        model.image_encoder.bias.fill_(2.0)  # latents start around 2, far from N(0, I)
    critic = model.make_critic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt_c = torch.optim.Adam(critic.parameters(), lr=3e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(1)
    features = torch.randn(512, 12, generator=g)
    ids = torch.randint(4, 16, (512, 8), generator=g)
    ids[:, 0], ids[:, -1] = 1, 2

    def distance():
        with torch.no_grad():
            return float(gaussian_frechet_distance(model.get_image_features(image_features=features)))

    before = distance()
    for _ in range(steps):
        i = torch.randint(0, 512, (64,), generator=g)
        out = model(image_features=features[i], input_ids=ids[i], critic=critic)  # encoders' step, critic detached
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        latents = torch.cat([out.image_embeds, out.text_embeds]).detach()
        loss_c = critic_loss(critic, latents, torch.randn_like(latents))  # then the critic's step
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
    return before, distance()


def test_prior_terms_move_the_latent_toward_the_prior():
    before, with_prior = _train_features_model(prior_weight=1.0)
    _, without_prior = _train_features_model(prior_weight=0.0)
    # statistic: Fréchet distance of the image latents' Gaussian fit to N(0, I), per dimension
    assert with_prior < 0.5 * before
    assert with_prior < 0.5 * without_prior


def test_greedy_captions_with_the_recurrent_cache_equal_teacher_forcing(tokenizer):
    model = JWAEModel(tiny(tokenizer)).eval()
    x, ids, mask = batch(tokenizer)
    latents = model.get_image_features(x)
    captions = model.generate_captions(latents, max_length=12)
    assert captions.shape == (4, 12) and (captions[:, 0] == tokenizer.bos_token_id).all()
    # step-by-step decoding carrying the GRU state == one teacher-forced pass over its own output
    logits = model.text_decoder(captions[:, :-1], latents)
    finished = torch.zeros(4, dtype=torch.bool)
    for t in range(1, 12):
        expected = logits[:, t - 1].argmax(-1)
        assert torch.equal(captions[~finished, t], expected[~finished])
        finished |= (captions[:, t] == tokenizer.eos_token_id) | (captions[:, t] == tokenizer.pad_token_id)


def test_round_trip_through_auto_classes(tmp_path, tokenizer):
    model = JWAEModel(tiny(tokenizer)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, JWAEModel)
    x, ids, mask = batch(tokenizer)
    assert torch.equal(model.get_image_features(x), loaded.get_image_features(x))
    # GRU kernels may take another path on freshly loaded weights: equal up to float rounding
    assert torch.allclose(model.get_text_features(ids, mask), loaded.get_text_features(ids, mask), atol=1e-6)
    assert torch.equal(model.get_text_features(ids), model.get_text_features(ids, mask))  # mask from padding


def test_registry_sizes_build():
    for name in ("jwae-test", "vsepp-caption-mnist", "jwae-precomp"):
        config = mmquant.get_config(name)
        assert isinstance(config, JWAEConfig)
    assert mmquant.create_model("jwae-test").config.latent_dim == 8


def test_bf16_autocast_trains_with_finite_losses(tokenizer):
    model = JWAEModel(tiny(tokenizer))
    critic = model.make_critic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(*batch(tokenizer), critic=critic)
        assert torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        opt.step()


def test_batch_of_one_works(tokenizer):
    x, ids, mask = batch(tokenizer, n=1)
    out = JWAEModel(tiny(tokenizer))(x, ids, mask)
    assert torch.isfinite(out.loss) and float(out.ranking_loss.detach()) == 0.0  # no negatives: no ranking cost


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda x, ids, m: (x[:, :1], ids, m), "pixel_values: expected 3 channels"),
        (lambda x, ids, m: (x[0], ids, m), "pixel_values: expected shape"),
        (lambda x, ids, m: (x[..., :8, :8], ids, m), "resized to 16x16"),
        (lambda x, ids, m: (x.masked_fill(x > 0.9, float("nan")), ids, m), "NaN"),
        (lambda x, ids, m: (x, ids[:, :10], m[:, :10]), "max_text_length=24"),
        (lambda x, ids, m: (x, ids + 1000, m), "vocab_size"),
        (lambda x, ids, m: (x, ids - 1000, m), "vocab_size"),
        (lambda x, ids, m: (x[:2], ids, m), "batch sizes differ"),
        (lambda x, ids, m: (x[:0], ids[:0], m[:0]), "empty batch"),
        (lambda x, ids, m: (x, ids, torch.zeros_like(m)), "empty"),
        (lambda x, ids, m: (x, ids, 1 - m), "right padding"),
        (lambda x, ids, m: ((x * 127).to(torch.uint8), ids, m), "floating-point tensor"),
    ],
)
def test_bad_inputs_raise_clear_errors(tokenizer, change, match):
    model = JWAEModel(tiny(tokenizer))
    x, ids, mask = change(*batch(tokenizer))
    with pytest.raises((ValueError, TypeError), match=match):
        model(x, ids, mask)


def test_wrong_image_kind_and_bad_config_are_named(tokenizer):
    model = JWAEModel(tiny(tokenizer))
    with pytest.raises(ValueError, match="pass pixel_values"):
        model.get_image_features(image_features=torch.randn(2, 2048))
    with pytest.raises(ValueError, match="ranking_loss"):
        tiny(tokenizer, ranking_loss="triplet")
    with pytest.raises(ValueError, match="image_size"):
        tiny(tokenizer, image_size=18)
    with pytest.raises(ValueError, match="lambda_text_prior"):
        tiny(tokenizer, lambda_text_prior=-1)
    with pytest.raises(ValueError, match="latents"):
        model.generate_captions(torch.randn(2, 5))

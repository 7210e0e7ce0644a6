"""The shared model tests (``model_tester.ModelTesterMixin``) applied to every model family's tiny registry size."""

from __future__ import annotations

from model_tester import ModelTesterMixin, captions, images


class TestOptVQ(ModelTesterMixin):
    size = "test"
    compared = ("reconstruction", "indices")

    def forward_inputs(self, model, batch, seed=0):
        c = model.config
        return {"pixel_values": images(c, batch, c.in_channels, c.image_size, seed)}


class TestOptVQVQGAN(TestOptVQ):
    size = "test-vqgan"


class TestCaptionMnistJudge(ModelTesterMixin):
    size = "caption-mnist-judge-test"
    compared = ("digit_logits", "color_logits")

    def forward_inputs(self, model, batch, seed=0):
        return {"pixel_values": images(model.config, batch, 3, model.config.image_size, seed)}


class TestMXQVAE(ModelTesterMixin):
    size = "mxqvae-test"
    compared = ("image_reconstruction", "text_logits", "indices")

    def forward_inputs(self, model, batch, seed=0):
        c = model.config
        ids, mask = captions(batch, c.max_text_length, c.vocab_size, c.pad_token_id, seed)
        return {"pixel_values": images(c, batch, c.in_channels, c.image_size, seed), "input_ids": ids}


class TestJWAE(ModelTesterMixin):
    size = "jwae-test"
    compared = ("image_embeds", "text_embeds", "image_reconstruction")  # text_logits: cut to the longest caption

    def forward_inputs(self, model, batch, seed=0):
        c = model.config
        ids, mask = captions(batch, c.max_text_length, c.vocab_size, c.pad_token_id, seed)
        pixels = images(c, batch, c.in_channels, c.image_size, seed)
        return {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask}


class TestLaviter(ModelTesterMixin):
    size = "laviter-test"
    compared = ("image_embeds", "text_embeds")

    def forward_inputs(self, model, batch, seed=0):
        v, t = model.config.vision_config, model.config.text_config
        ids, mask = captions(batch, t.max_length, t.vocab_size, t.pad_token_id, seed)
        return {
            "pixel_values": images(v, batch, v.in_channels, v.image_size, seed),
            "input_ids": ids,
            "attention_mask": mask,
        }

"""Configurations of MXQ-VAE ("Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer", Lee, Park,
Lee, Choi; reference code github.com/ttumyche/MXQ-VAE): the stage-1 joint tokenizer and the stage-2 prior."""

from __future__ import annotations

from transformers import GPT2Config, PretrainedConfig

from ...modules.text_cnn import text_chunk_size, text_kernel_size

__all__ = ["MXQVAEConfig", "MXQVAEPriorConfig"]

_FUSIONS = ("cross", "shared_codebook_only")
_TEXT_CODERS = ("valid_conv", "chunk")


class MXQVAEConfig(PretrainedConfig):
    r"""Configuration of [`MXQVAEModel`], the stage-1 multimodal cross quantizer.

    An image encoder (VQ-VAE CNN, `image_size / 2**len(image_channels)` squared tokens) and a 1-D CNN text encoder
    (`text_latent_length` tokens) feed a transformer that fuses the concatenated tokens; one shared codebook
    quantizes every fused token into the joint code sequence (image positions first, then text positions); linear
    layers over the token axis split the codes back into image and text positions for the two decoders.

    Args:
        image_size (`int`, defaults to 64): height and width of the images.
        in_channels (`int`, defaults to 3): image channels.
        image_channels (`list[int]`, defaults to `[32, 64, 64]`): encoder channels per stride-2 level (the
            reference: 64, 128, 256 and 6 residual blocks; sized down for CPU training).
        image_res_layers (`int`, defaults to 1): residual blocks of the image encoder and decoder.
        vocab_size (`int`, defaults to 64): size of the caption tokenizer's vocabulary.
        max_text_length (`int`, defaults to 48): caption length in tokens ([BOS] ... [EOS] + padding).
        text_latent_length (`int`, defaults to 8): text positions of the joint code sequence.
        text_num_layers (`int`, defaults to 4): with `text_coder="valid_conv"`, the valid 1-D convolutions from
            `max_text_length` to `text_latent_length` (their difference must be a multiple of it); with
            `text_coder="chunk"`, the same-padded convolutions before the chunk projection (and after it in the
            decoder).
        text_coder (`str`, defaults to `"valid_conv"`): the text encoder and decoder. `"valid_conv"` is the
            reference's: valid convolutions of kernel `(max_text_length - text_latent_length) / text_num_layers
            + 1` whose windows overlap on all but a few tokens (`TextConvEncoder`). `"chunk"` runs same-padded
            convolutions of width `text_kernel_size`, then maps each run of `max_text_length //
            text_latent_length` consecutive positions to one latent position (`TextChunkEncoder`;
            `max_text_length` must be a multiple of `text_latent_length`). On Caption MNIST Quad4 the valid
            convolutions left the digit and colour words at chance after 4,000 steps at 8 text positions (even
            without text corruption); the chunked coder with more text positions carries them through the codes
            (`examples/mxqvae/configs/quad4_chunk_text.yaml`).
        text_kernel_size (`int`, defaults to 5): width of the chunked coder's convolutions (odd; unused by
            `"valid_conv"`, whose kernel follows from the lengths).
        text_embed_dim (`int`, defaults to 64): word embedding size.
        pad_token_id / mask_token_id (`int`): the tokenizer's `[PAD]` (ignored by the text loss) and `[MASK]` ids.
        hidden_size (`int`, defaults to 64): width of the fused tokens and of the codes.
        num_fusion_layers (`int`, defaults to 2), num_attention_heads (`int`, defaults to 4),
        intermediate_size (`int`, defaults to 256): the fusion transformer (the reference uses 4 BERT layers).
        fusion (`str`, defaults to `"cross"`): `"cross"` fuses image and text before quantizing (MXQ-VAE);
            `"shared_codebook_only"` (the "Only Sharing C" ablation of Table 1) removes the cross-modal attention:
            each modality's tokens attend only to their own in the fusion transformer and are quantized apart with
            the one shared codebook; everything else is as in MXQ-VAE, including the split layers after the
            codebook (as the reference's `Layer_img` / `Layer_txt`, linear maps over all code positions).
        position_init (`str`, defaults to `"sincos"`): initial value of the learned position embeddings of the fused
            tokens: `"sincos"` (2-D sine-cosine on the image grid, 1-D on the text positions) or `"zeros"`. CNN
            features carry no absolute position, so from zeros a text token cannot tell the quadrants apart until
            the positions are learned.
        fusion_input_norm (`bool`, defaults to `False`): layer-normalise the image tokens and the text tokens (one
            LayerNorm per modality) before adding the positions and fusing them. The CNN features are a few times
            the norm of the sine-cosine positions, so without it the positions are a small part of each token and a
            text token finds the image region its caption names slowly. `False` is the reference's (and the older
            checkpoints'); the shipped Quad4 model uses `True` (`examples/mxqvae/configs/quad4_image_route.yaml`).
        split_hidden_size (`int`, defaults to 32): hidden width of the text split layer.
        split_text_residual (`bool`, defaults to `False`): add the text positions' own codes to the output of the
            text split layer (`text = z_hat[text positions] + MLP(z_hat)` over the token axis) so that the text
            decoder reads its codes directly and the MLP adds what it takes from the image positions. `False` is
            the plain MLP over all `num_tokens` positions, which must learn to route the text positions through
            `split_hidden_size` ReLU units from a near-zero initialisation.
        quantizer_config (`dict`): the shared codebook (`type` `"vq"` nearest neighbour, or `"sinkhorn"` for
            OptVQ; `codebook_size` 256 as the reference; other keys as in `mmquant.quantizers`).
        image_mask_ratio (`float`, defaults to 0.3): fraction of `image_mask_patch_size` patches zeroed during
            training (image masking, "IM"); 0 disables it.
        image_mask_patch_size (`int`, defaults to 8): side of the masked patches.
        text_mask_ratio (`float`, defaults to 0.3): fraction of the caption's tokens corrupted during training
            (text corruption, "TC"; the reference replaces them by `[MASK]`); 0 disables it.
        text_corruption_groups (`list[list[int]]`, *optional*): token ids eligible for corruption, in groups of
            interchangeable words (on Caption MNIST: the digits, the colour words). When set, `text_mask_ratio` is
            the fraction of each caption's *eligible* tokens corrupted (salient-word masking, as REALM masks salient
            spans) and the template words stay intact; `None` (the reference) corrupts any non-padding token.
        text_replace_ratio (`float`, defaults to 0.0): fraction of the corrupted tokens that are replaced by another
            word of their group instead of `[MASK]` (BERT replaces 10% by a random token), so that the visible words
            of a training caption are sometimes wrong and the image is the only reliable source of its content.
            Needs `text_corruption_groups`; 0 (the reference) only masks.
        image_loss_weight (`float`, defaults to 1.0): weight of the image MSE (pixels in [-1, 1]).
        text_loss_weight (`float`, defaults to 1.0): weight of the caption cross-entropy.
        text_loss_on_padding (`bool`, defaults to `False`): also train the text decoder to predict `[PAD]` after
            the caption (the cross-entropy then covers all `max_text_length` positions; `text_accuracy` still
            counts only the caption's tokens). `False` ignores padding, so the decoder emits arbitrary tokens
            after `[EOS]` and decoded captions carry trailing words (which breaks parsing them).
    """

    model_type = "mxqvae"

    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        image_channels: list[int] | tuple[int, ...] = (32, 64, 64),
        image_res_layers: int = 1,
        vocab_size: int = 64,
        max_text_length: int = 48,
        text_latent_length: int = 8,
        text_num_layers: int = 4,
        text_embed_dim: int = 64,
        text_coder: str = "valid_conv",
        text_kernel_size: int = 5,
        pad_token_id: int = 0,
        mask_token_id: int = 4,
        hidden_size: int = 64,
        num_fusion_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int = 256,
        fusion: str = "cross",
        position_init: str = "sincos",
        fusion_input_norm: bool = False,
        split_hidden_size: int = 32,
        split_text_residual: bool = False,
        quantizer_config: dict | None = None,
        image_mask_ratio: float = 0.3,
        image_mask_patch_size: int = 8,
        text_mask_ratio: float = 0.3,
        text_corruption_groups: list[list[int]] | None = None,
        text_replace_ratio: float = 0.0,
        image_loss_weight: float = 1.0,
        text_loss_weight: float = 1.0,
        text_loss_on_padding: bool = False,
        **kwargs,
    ):
        self.image_size = image_size
        self.in_channels = in_channels
        self.image_channels = list(image_channels)
        self.image_res_layers = image_res_layers
        self.vocab_size = vocab_size
        self.max_text_length = max_text_length
        self.text_latent_length = text_latent_length
        self.text_num_layers = text_num_layers
        self.text_embed_dim = text_embed_dim
        self.text_coder = text_coder
        self.text_kernel_size = text_kernel_size
        self.mask_token_id = mask_token_id
        self.hidden_size = hidden_size
        self.num_fusion_layers = num_fusion_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.fusion = fusion
        self.position_init = position_init
        self.fusion_input_norm = fusion_input_norm
        self.split_hidden_size = split_hidden_size
        self.split_text_residual = split_text_residual
        self.quantizer_config = dict(quantizer_config or {"type": "vq", "codebook_size": 256, "beta": 0.25})
        self.image_mask_ratio = image_mask_ratio
        self.image_mask_patch_size = image_mask_patch_size
        self.text_mask_ratio = text_mask_ratio
        self.text_corruption_groups = (
            [list(map(int, g)) for g in text_corruption_groups] if text_corruption_groups else None
        )
        self.text_replace_ratio = text_replace_ratio
        self.image_loss_weight = image_loss_weight
        self.text_loss_weight = text_loss_weight
        self.text_loss_on_padding = text_loss_on_padding
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self._validate()

    def _validate(self) -> None:
        if self.fusion not in _FUSIONS:
            raise ValueError(f"fusion={self.fusion!r}: expected one of {_FUSIONS}.")
        down = 2 ** len(self.image_channels)
        if self.image_size % down:
            raise ValueError(f"image_size={self.image_size}: must be divisible by 2**len(image_channels) = {down}.")
        if self.text_coder not in _TEXT_CODERS:
            raise ValueError(f"text_coder={self.text_coder!r}: expected one of {_TEXT_CODERS}.")
        if self.text_coder == "valid_conv":
            text_kernel_size(self.max_text_length, self.text_latent_length, self.text_num_layers)
        else:
            text_chunk_size(self.max_text_length, self.text_latent_length, self.text_num_layers, self.text_kernel_size)
        if self.image_size % self.image_mask_patch_size:
            raise ValueError(f"image_mask_patch_size={self.image_mask_patch_size}: must divide image_size.")
        for name in ("image_mask_ratio", "text_mask_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a fraction in [0, 1).")
        if not 0.0 <= self.text_replace_ratio <= 1.0:
            raise ValueError(f"text_replace_ratio={self.text_replace_ratio}: expected a fraction in [0, 1].")
        groups = self.text_corruption_groups
        if self.text_replace_ratio > 0 and not groups:
            raise ValueError(
                "text_replace_ratio > 0 needs text_corruption_groups (the groups of words a token may be replaced by)."
            )
        if groups:
            flat = [t for g in groups for t in g]
            if any(len(g) < 2 for g in groups) or len(set(flat)) != len(flat):
                raise ValueError(
                    f"text_corruption_groups: expected disjoint groups of at least 2 token ids each, got {groups}."
                )
            if min(flat) < 0 or max(flat) >= self.vocab_size or {self.pad_token_id, self.mask_token_id} & set(flat):
                raise ValueError(
                    f"text_corruption_groups: token ids must lie in [0, vocab_size={self.vocab_size}) and exclude "
                    f"[PAD] ({self.pad_token_id}) and [MASK] ({self.mask_token_id}), got {groups}."
                )
        if self.position_init not in ("sincos", "zeros"):
            raise ValueError(f"position_init={self.position_init!r}: expected 'sincos' or 'zeros'.")
        if self.position_init == "sincos" and self.hidden_size % 4:
            raise ValueError(f"hidden_size={self.hidden_size}: position_init='sincos' needs a multiple of 4.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads}: must divide hidden_size.")

    @property
    def image_latent_size(self) -> int:
        """Side of the image token grid."""
        return self.image_size // 2 ** len(self.image_channels)

    @property
    def num_image_tokens(self) -> int:
        return self.image_latent_size**2

    @property
    def num_tokens(self) -> int:
        """Length of the joint code sequence: image positions, then text positions."""
        return self.num_image_tokens + self.text_latent_length

    @property
    def codebook_size(self) -> int:
        return self.quantizer_config["codebook_size"]


class MXQVAEPriorConfig(GPT2Config):
    r"""Configuration of [`MXQVAEPriorForCausalLM`], the stage-2 autoregressive prior over the joint code sequence: a
    GPT-2 decoder whose vocabulary is the stage-1 codebook plus one start token per sequence order, and whose config
    nests the stage-1 config (as transformers' Janus nests its `vq_config`).

    The sequence is `[start] + codes`, where `start = codebook_size` begins the codes in their canonical order
    (image positions, then text positions) and `start = codebook_size + 1` begins them text positions first, so
    that a caption's codes can prefix the image's (text-to-image completion) and an image's codes the caption's.

    Args:
        stage1_config (`dict` or [`MXQVAEConfig`]): the stage-1 model whose codes are modelled.
        n_layer, n_head, n_embd: the GPT-2 decoder (the reference uses 8 layers, 8 heads, 512).
        Other GPT-2 arguments are accepted as in [`GPT2Config`]; `vocab_size`, `n_positions`, `bos_token_id` and
        `eos_token_id` are derived from the stage-1 config.
    """

    model_type = "mxqvae_prior"
    sub_configs = {"stage1_config": MXQVAEConfig}

    def __init__(self, stage1_config: dict | MXQVAEConfig | None = None, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, **kwargs):  # fmt: skip
        if isinstance(stage1_config, MXQVAEConfig):
            stage1 = stage1_config
        else:
            stage1 = MXQVAEConfig(**(stage1_config or {}))
        self.stage1_config = stage1
        for derived in ("vocab_size", "n_positions", "bos_token_id", "eos_token_id"):
            kwargs.pop(derived, None)
        super().__init__(
            vocab_size=stage1.codebook_size + 2,
            n_positions=stage1.num_tokens + 1,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            bos_token_id=stage1.codebook_size,
            eos_token_id=stage1.codebook_size,
            **kwargs,
        )

    @property
    def image_first_token_id(self) -> int:
        return self.stage1_config.codebook_size

    @property
    def text_first_token_id(self) -> int:
        return self.stage1_config.codebook_size + 1

"""Configurations of MXQ-VAE ("Unconditional Image-Text Pair Generation with Multimodal Cross Quantizer", Lee, Park,
Lee, Choi, BMVC 2022, arXiv:2204.07537; reference code github.com/ttumyche/MXQ-VAE): the stage-1 joint tokenizer
and the stage-2 prior."""

from __future__ import annotations

from transformers import GPT2Config, PretrainedConfig

from ...modules.text_cnn import text_chunk_size, text_kernel_size

__all__ = ["MXQVAEConfig", "MXQVAEPriorConfig"]

_FUSIONS = ("cross", "shared_codebook_only")
_TEXT_CODERS = ("valid_conv", "chunk")
# keys of older configs that are no longer options, with the one value each may hold (the value the model now always
# uses, which the checkpoints saved before the option was removed hold); loading such a config drops them
_REMOVED_OPTIONS = {"position_init": "sincos"}


class MXQVAEConfig(PretrainedConfig):
    r"""Configuration of [`MXQVAEModel`], the stage-1 multimodal cross quantizer.

    An image encoder (the VQ-VAE CNN, `(image_size / 2**len(image_channels))**2` tokens) and a 1-D CNN text encoder
    (`text_latent_length` tokens) feed a transformer that fuses the concatenated tokens; one shared codebook
    quantizes every fused token into the joint code sequence z_hat (image positions first, then text positions);
    linear layers over the token axis split the codes back into image and text positions for the two decoders.

    The defaults build the reference code's Caption MNIST model (`pl_main.py` defaults): 64x64 images, a CNN of 64,
    128 and 256 channels with 6 residual blocks, 4 valid text convolutions from 128-d word embeddings down to 8 text
    positions, a 4-layer, 2-head transformer of width 128, 256 codes, image masking and text corruption of 30%. The
    caption length and vocabulary are those of the word-level Caption MNIST tokenizer (48 tokens; the reference
    reads 64 BERT word pieces). Departing from the reference, the fused tokens get learned position embeddings
    (initialised to 2-D sine-cosine positions on the image grid and 1-D ones on the text positions; the reference
    feeds its BERT encoder none). The model shipped in the zoo is the named size `mxqvae-caption-mnist` of
    `mmquant.models.registry`: a smaller network with the chunked text coder and the Quad4 training recipe
    (`examples/mxqvae/configs/quad4_image_route.yaml`, whose comments record why each departure was made).

    Args:
        image_size (`int`, *optional*, defaults to 64):
            Height and width of the images; a multiple of `2 ** len(image_channels)` and of `image_mask_patch_size`.
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input (and reconstructed) images.
        image_channels (`list[int]`, *optional*, defaults to `[64, 128, 256]`):
            Channels of the image encoder's stride-2 convolutions, one per level (the decoder mirrors them).
        image_res_layers (`int`, *optional*, defaults to 6):
            Residual blocks of the image encoder and of the image decoder.
        vocab_size (`int`, *optional*, defaults to 64):
            Size of the caption tokenizer's vocabulary (the training script sets it from the tokenizer).
        max_text_length (`int`, *optional*, defaults to 48):
            Caption length in tokens (`[BOS] ... [EOS]` and padding).
        text_latent_length (`int`, *optional*, defaults to 8):
            Text positions of the joint code sequence.
        text_num_layers (`int`, *optional*, defaults to 4):
            Convolutions of the text encoder (the decoder mirrors them). With `text_coder="valid_conv"`, valid
            convolutions from `max_text_length` down to `text_latent_length` positions (their difference must be a
            multiple of `text_num_layers`); with `text_coder="chunk"`, same-padded convolutions before the chunk
            projection.
        text_embed_dim (`int`, *optional*, defaults to 128):
            Size of the word embeddings.
        text_coder (`str`, *optional*, defaults to `"valid_conv"`):
            The text encoder and decoder: `"valid_conv"` (the reference's: valid convolutions of kernel
            `(max_text_length - text_latent_length) / text_num_layers + 1`, `TextConvEncoder`) or `"chunk"`
            (same-padded convolutions of width `text_kernel_size`, then each run of `max_text_length /
            text_latent_length` positions projected to one text position, `TextChunkEncoder`; `max_text_length` must
            be a multiple of `text_latent_length`).
        text_kernel_size (`int`, *optional*, defaults to 5):
            Width of the convolutions of `text_coder="chunk"` (odd). `"valid_conv"` derives its kernel from the
            lengths.
        pad_token_id (`int`, *optional*, defaults to 0):
            The tokenizer's `[PAD]` id (ignored by the text loss unless `text_loss_on_padding`).
        mask_token_id (`int`, *optional*, defaults to 4):
            The tokenizer's `[MASK]` id, written over the corrupted tokens.
        hidden_size (`int`, *optional*, defaults to 128):
            Width of the fused tokens and of the codes (a multiple of 4 and of `num_attention_heads`).
        num_fusion_layers (`int`, *optional*, defaults to 4):
            Layers of the fusion transformer (the reference's BERT encoder).
        num_attention_heads (`int`, *optional*, defaults to 2):
            Attention heads of the fusion transformer.
        intermediate_size (`int`, *optional*, defaults to 512):
            Width of the fusion transformer's feed-forward layers.
        fusion (`str`, *optional*, defaults to `"cross"`):
            `"cross"` fuses image and text before quantizing (MXQ-VAE); `"shared_codebook_only"` is the "Only
            Sharing C" ablation of Table 1: each modality's tokens attend only to their own, and both are quantized
            with the one shared codebook (everything else as in MXQ-VAE).
        fusion_input_norm (`bool`, *optional*, defaults to `False`):
            Layer-normalise the image tokens and the text tokens (one `LayerNorm` per modality) before the positions
            are added, so that the positions weigh as much as the CNN features. `False` is the reference's.
        split_hidden_size (`int`, *optional*, defaults to 32):
            Hidden width of the MLP over the token axis that maps the codes to the text positions (the reference's
            `Layer_txt`).
        split_text_residual (`bool`, *optional*, defaults to `False`):
            Add the text positions' own codes to that MLP's output, so that the text decoder reads its codes directly
            and the MLP adds what it takes from the image positions. `False` is the reference's plain MLP.
        quantizer_config (`dict`, *optional*):
            The shared codebook: `type` (`"vq"` nearest neighbour, as the reference, or `"sinkhorn"` for OptVQ) and
            its keyword arguments (`codebook_size`, `beta`, `kmeans_init`, `dead_code_threshold`, ...; see
            `mmquant.quantizers`). Defaults to `{"type": "vq", "codebook_size": 256, "beta": 0.25}`.
        image_mask_ratio (`float`, *optional*, defaults to 0.3):
            Fraction of the `image_mask_patch_size` patches zeroed during training (image masking, "IM" of Table 1);
            0 disables it.
        image_mask_patch_size (`int`, *optional*, defaults to 8):
            Side of the masked image patches.
        text_mask_ratio (`float`, *optional*, defaults to 0.3):
            Fraction of each caption's eligible tokens corrupted during training (text corruption, "TC" of Table 1);
            0 disables it.
        text_corruption_groups (`list[list[int]]`, *optional*):
            Token ids eligible for corruption, in disjoint groups of interchangeable words (on Caption MNIST the
            digits and the colour words). `None` (the reference) makes every non-padding token eligible.
        text_replace_ratio (`float`, *optional*, defaults to 0.0):
            Fraction of the corrupted tokens replaced by another word of their group instead of `[MASK]` (needs
            `text_corruption_groups`); 0 (the reference) only masks.
        image_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the image MSE (pixels in [-1, 1]).
        text_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the caption cross-entropy.
        text_loss_on_padding (`bool`, *optional*, defaults to `False`):
            Also train the text decoder to predict `[PAD]` after the caption, so that decoded captions end at
            `[EOS]` (`text_accuracy` still counts only the caption's tokens). `False` is the reference's.
        text_only_ratio (`float`, *optional*, defaults to 0.0):
            Share of each training batch encoded from the caption alone: the image fully masked, the caption clean
            (the input [`MXQVAEModel.text_only_inputs`] builds, which the pipeline's text->image prefix uses). Not in
            the paper, whose IM masks patches only; 0 (the paper) disables it.
        image_only_ratio (`float`, *optional*, defaults to 0.0):
            Share of each training batch encoded from the image alone: the caption replaced by
            [`MXQVAEModel.image_only_inputs`]'s all-`[MASK]` caption (the pipeline's image->text prefix); its caption
            loss is not counted (the wording of a caption is not in the image). 0 (the paper) disables it.
        prefix_consistency_weight (`float`, *optional*, defaults to 0.0):
            Weight of `||z_mode - sg[e_clean]||^2` on the text-only rows' text positions and the image-only rows'
            image positions: their fused tokens are pulled to the codes the clean pair gets, so that a caption (an
            image) encoded alone gives the prefix codes the prior was trained on.

    Example:
    >>> from mmquant import MXQVAEConfig, MXQVAEModel
    >>> config = MXQVAEConfig(
    ...     image_channels=[8, 8, 8], image_res_layers=1, text_embed_dim=8, hidden_size=16, num_fusion_layers=1,
    ...     intermediate_size=32, quantizer_config={"type": "vq", "codebook_size": 32},
    ... )
    >>> model = MXQVAEModel(config)
    >>> config.num_tokens  # 8 x 8 image positions, then 8 text positions
    72
    """

    model_type = "mxqvae"

    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        image_channels: list[int] | tuple[int, ...] = (64, 128, 256),
        image_res_layers: int = 6,
        vocab_size: int = 64,
        max_text_length: int = 48,
        text_latent_length: int = 8,
        text_num_layers: int = 4,
        text_embed_dim: int = 128,
        text_coder: str = "valid_conv",
        text_kernel_size: int = 5,
        pad_token_id: int = 0,
        mask_token_id: int = 4,
        hidden_size: int = 128,
        num_fusion_layers: int = 4,
        num_attention_heads: int = 2,
        intermediate_size: int = 512,
        fusion: str = "cross",
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
        text_only_ratio: float = 0.0,
        image_only_ratio: float = 0.0,
        prefix_consistency_weight: float = 0.0,
        **kwargs,
    ):
        for name, kept in _REMOVED_OPTIONS.items():
            value = kwargs.pop(name, kept)
            if value != kept:
                raise ValueError(
                    f"{name}={value!r}: no longer an option of MXQVAEConfig; the model always uses {name}={kept!r}. "
                    "Remove it from the config."
                )
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
        self.text_only_ratio = text_only_ratio
        self.image_only_ratio = image_only_ratio
        self.prefix_consistency_weight = prefix_consistency_weight
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
        for name in ("text_only_ratio", "image_only_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a fraction in [0, 1].")
        if self.text_only_ratio + self.image_only_ratio > 1.0:
            raise ValueError(
                f"text_only_ratio + image_only_ratio = {self.text_only_ratio + self.image_only_ratio}: the two shares "
                "of the batch must add up to at most 1."
            )
        if self.prefix_consistency_weight < 0:
            raise ValueError(f"prefix_consistency_weight={self.prefix_consistency_weight}: expected >= 0.")
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
        if self.hidden_size % 4:
            raise ValueError(f"hidden_size={self.hidden_size}: expected a multiple of 4 (the sine-cosine positions).")
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
    r"""Configuration of [`MXQVAEPriorForCausalLM`], the stage-2 autoregressive prior over the joint code sequence
    z_hat: a GPT-2 decoder whose vocabulary is the stage-1 codebook plus one start token per sequence order, and whose
    config nests the stage-1 config (as transformers' Janus nests its `vq_config`).

    The sequence is `[start] + codes`, where `start = codebook_size` begins the codes in their canonical order
    (image positions, then text positions) and `start = codebook_size + 1` begins them text positions first, so
    that a caption's codes can prefix the image's (text-to-image completion) and an image's codes the caption's.

    Args:
        stage1_config (`dict` or [`MXQVAEConfig`], *optional*):
            The stage-1 model whose codes are modelled; defaults to `MXQVAEConfig()`.
        n_layer (`int`, *optional*, defaults to 8):
            Transformer layers (the reference's).
        n_head (`int`, *optional*, defaults to 8):
            Attention heads (the reference's).
        n_embd (`int`, *optional*, defaults to 512):
            Width of the decoder (the reference's; the shipped prior, trained on a CPU, has 4 layers, 4 heads and
            width 128).
        caption_vocab_size (`int`, *optional*, defaults to 0):
            0: the paper's prior over the joint codes. Otherwise (not in the paper) a caption-conditioned prior for
            text -> image: every sequence starts with a caption's `stage1_config.max_text_length` token ids (the
            stage-1 tokenizer's, of this vocabulary size) after their own start token, then the codes image-first;
            the vocabulary adds the caption start token and the caption's words after the codes' tokens.
        kwargs (*optional*):
            Other [`GPT2Config`] arguments (dropouts, `activation_function`, ...). `vocab_size`, `n_positions`,
            `bos_token_id` and `eos_token_id` are derived from the stage-1 config; values given for them are
            ignored.

    Example:
    >>> from mmquant import MXQVAEConfig, MXQVAEPriorConfig
    >>> stage1 = MXQVAEConfig(quantizer_config={"type": "vq", "codebook_size": 32})
    >>> config = MXQVAEPriorConfig(stage1_config=stage1, n_layer=1, n_head=2, n_embd=32)
    >>> config.vocab_size, config.n_positions  # 32 codes + 2 start tokens; 64 + 8 codes + 1 start token
    (34, 73)
    """

    model_type = "mxqvae_prior"
    sub_configs = {"stage1_config": MXQVAEConfig}

    def __init__(self, stage1_config: dict | MXQVAEConfig | None = None, n_layer: int = 8, n_head: int = 8,
                 n_embd: int = 512, caption_vocab_size: int = 0, **kwargs):  # fmt: skip
        if isinstance(stage1_config, MXQVAEConfig):
            stage1 = stage1_config
        else:
            stage1 = MXQVAEConfig(**(stage1_config or {}))
        if not isinstance(caption_vocab_size, int) or caption_vocab_size < 0:
            raise ValueError(f"caption_vocab_size={caption_vocab_size!r}: expected 0 (no caption) or the vocab size.")
        self.stage1_config = stage1
        self.caption_vocab_size = caption_vocab_size
        for derived in ("vocab_size", "n_positions", "bos_token_id", "eos_token_id"):
            kwargs.pop(derived, None)
        caption = 1 + caption_vocab_size if caption_vocab_size else 0  # the caption start token and the words
        super().__init__(
            vocab_size=stage1.codebook_size + 2 + caption,
            n_positions=stage1.num_tokens + 1 + (1 + stage1.max_text_length if caption_vocab_size else 0),
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

    @property
    def caption_token_id(self) -> int:
        """The start token of a caption prefix (caption-conditioned priors); its words follow it in the vocabulary."""
        return self.stage1_config.codebook_size + 2

    @property
    def caption_length(self) -> int:
        """Tokens before the codes' start token in a caption-conditioned sequence (0 for the paper's prior)."""
        return 1 + self.stage1_config.max_text_length if self.caption_vocab_size else 0

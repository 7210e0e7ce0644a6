"""Configuration of jWAE (Mahajan, Botschen, Gurevych, Roth, "Joint Wasserstein Autoencoders for Aligning
Multimodal Embeddings", ICCV Workshops 2019, arXiv:1909.06635; reference code github.com/visinf/jwae)."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["JWAEConfig"]

_IMAGE_INPUTS = ("pixels", "features", "grid_features")
_RANKING_LOSSES = ("max_hinge", "mse", "none")


class JWAEConfig(PretrainedConfig):
    r"""Configuration of [`JWAEModel`]: two autoencoders, one per modality, whose latents share one space that is
    matched to the Gaussian prior N(0, I) (the L_jWAE loss) and aligned across modalities by a ranking loss.

    A decoder is built only when its reconstruction weight is positive, so `lambda_* = 0` with
    `ranking_loss="max_hinge"` is the VSE++ baseline of the same encoders and embedding size.

    Args:
        image_input (`str`, defaults to `"pixels"`): `"pixels"` (a CNN encoder/decoder on images in [-1, 1]) or
            `"features"` (precomputed image features, e.g. 2048-d CNN features on COCO/Flickr30k, encoded by a linear
            layer and reconstructed by an MLP as in the reference code) or `"grid_features"` (images in [-1, 1] read
            by a frozen pretrained CNN per crop of a 2x2 grid plus the pooled canvas and per colour channel, see
            `mmquant.modules.grid_features`; its features are then encoded and reconstructed as `"features"` are: the
            Caption MNIST analogue of the paper's precomputed ResNet features).
        image_size (`int`, defaults to 64), in_channels (`int`, defaults to 3): the images (`"pixels"`,
            `"grid_features"`).
        image_channels (`list[int]`, defaults to `[32, 64, 64]`): CNN channels per stride-2 level (`"pixels"`).
        image_res_layers (`int`, defaults to 1): residual blocks of the CNN encoder and decoder.
        image_feature_dim (`int`, defaults to 2048): size of the precomputed features (`"features"`).
        image_decoder_hidden_size (`int`, defaults to 1024): MLP width of the feature decoder (`"features"`,
            `"grid_features"`).
        grid_feature_channels (`list[int]`, defaults to `[16, 32]`), grid_feature_dim (`int`, defaults to 32):
            the frozen CNN of `"grid_features"` (conv widths per level, features per crop and channel); the model
            encodes `5 * in_channels * grid_feature_dim` features per image.
        vocab_size (`int`, defaults to 64): the caption tokenizer's vocabulary.
        max_text_length (`int`, defaults to 48): caption length in tokens ([BOS] ... [EOS] + padding).
        pad_token_id / bos_token_id / eos_token_id / unk_token_id (`int`): the tokenizer's special ids.
        word_embed_dim (`int`, defaults to 128): word embeddings of the text encoder and decoder (reference: 300).
        text_hidden_size (`int`, defaults to 256): GRU width of the text encoder and decoder.
        text_num_layers (`int`, defaults to 1): GRU layers.
        word_dropout (`float`, defaults to 0.2): during training, fraction of the decoder's input words replaced by
            `[UNK]` (the reference's word dropout), so the decoder must rely on the latent.
        latent_dim (`int`, defaults to 128): size of the shared latent space (reference: 1024).
        ranking_loss (`str`, defaults to `"max_hinge"`): the cross-modal term, `"max_hinge"` (jWAE-MH, L_MH of
            VSE++), `"mse"` (jWAE-MSE) or `"none"` (unsupervised jWAE).
        margin (`float`, defaults to 0.2): hinge margin of `"max_hinge"`.
        hardest_negatives (`bool`, defaults to `True`): max over negatives (VSE++ MH) rather than their sum.
        lambda_image_reconstruction (`float`, defaults to 1.0): λ1, weight of the image reconstruction (L1).
        lambda_text_reconstruction (`float`, defaults to 0.1): λ2, weight of the caption negative log-likelihood
            (mean per token).
        lambda_image_prior (`float`, defaults to 0.1): λ3, weight of the adversarial estimate of D_JS(F_v || P_L).
        lambda_text_prior (`float`, defaults to 0.1): λ4, weight of D_JS(F_t || P_L).
        lambda_ranking (`float`, defaults to 1.0): weight of the ranking term (1 in L_jWAE-MH = L_jWAE + L_MH).
        lambda_image_caption (`float`, defaults to 0.0): weight of a captioning head that is not in the paper: the
            caption negative log-likelihood of g_t decoding from the *detached* image latent sg(f_v(x)). It trains
            only the text decoder (the embeddings are unchanged), so that `generate_captions(image latents)` describes
            images; with 0 (the paper) g_t only ever sees caption latents, and decoding an image latent, which the
            ranking loss aligns with its caption's in direction but not in norm, collapses to a few captions.
        critic_hidden_size (`int`, defaults to 256), critic_num_layers (`int`, defaults to 1): the latent critic
            (trained by the training script, not part of the saved model).

    Example:
    >>> from mmquant import JWAEConfig, JWAEModel
    >>> config = JWAEConfig(image_channels=[8, 8, 8], latent_dim=16, text_hidden_size=32, word_embed_dim=16)
    >>> model = JWAEModel(config)
    >>> model.config.ranking_loss
    'max_hinge'
    """

    model_type = "jwae"

    def __init__(
        self,
        image_input: str = "pixels",
        image_size: int = 64,
        in_channels: int = 3,
        image_channels: list[int] | tuple[int, ...] = (32, 64, 64),
        image_res_layers: int = 1,
        image_feature_dim: int = 2048,
        image_decoder_hidden_size: int = 1024,
        grid_feature_channels: list[int] | tuple[int, ...] = (16, 32),
        grid_feature_dim: int = 32,
        vocab_size: int = 64,
        max_text_length: int = 48,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        unk_token_id: int = 3,
        word_embed_dim: int = 128,
        text_hidden_size: int = 256,
        text_num_layers: int = 1,
        word_dropout: float = 0.2,
        latent_dim: int = 128,
        ranking_loss: str = "max_hinge",
        margin: float = 0.2,
        hardest_negatives: bool = True,
        lambda_image_reconstruction: float = 1.0,
        lambda_text_reconstruction: float = 0.1,
        lambda_image_prior: float = 0.1,
        lambda_text_prior: float = 0.1,
        lambda_ranking: float = 1.0,
        lambda_image_caption: float = 0.0,
        critic_hidden_size: int = 256,
        critic_num_layers: int = 1,
        **kwargs,
    ):
        if image_input not in _IMAGE_INPUTS:
            raise ValueError(f"image_input={image_input!r}: expected one of {_IMAGE_INPUTS}.")
        if ranking_loss not in _RANKING_LOSSES:
            raise ValueError(f"ranking_loss={ranking_loss!r}: expected one of {_RANKING_LOSSES}.")
        image_channels = list(image_channels)
        if image_input == "pixels" and (not image_channels or image_size % 2 ** len(image_channels)):
            raise ValueError(
                f"image_size={image_size}, image_channels={image_channels}: image_size must be divisible by "
                f"2**len(image_channels) = {2 ** len(image_channels)} (one halving per level)."
            )
        grid_feature_channels = list(grid_feature_channels)
        if image_input == "grid_features" and (
            not grid_feature_channels or image_size % 2 ** (len(grid_feature_channels) + 1)
        ):
            raise ValueError(
                f"image_size={image_size}, grid_feature_channels={grid_feature_channels}: grid features need at least "
                "one CNN level and quadrant crops (side image_size / 2) divisible by 2**len(grid_feature_channels) "
                "(one halving per level)."
            )
        for name, value in dict(
            grid_feature_dim=grid_feature_dim,
            vocab_size=vocab_size,
            max_text_length=max_text_length,
            latent_dim=latent_dim,
            text_hidden_size=text_hidden_size,
            word_embed_dim=word_embed_dim,
        ).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer.")
        if max_text_length < 2:
            raise ValueError(f"max_text_length={max_text_length}: expected at least 2 ([BOS] and [EOS]).")
        if not 0 <= word_dropout < 1:
            raise ValueError(f"word_dropout={word_dropout}: expected a value in [0, 1).")
        weights = dict(
            lambda_image_reconstruction=lambda_image_reconstruction,
            lambda_text_reconstruction=lambda_text_reconstruction,
            lambda_image_prior=lambda_image_prior,
            lambda_text_prior=lambda_text_prior,
            lambda_ranking=lambda_ranking,
            lambda_image_caption=lambda_image_caption,
        )
        for name, value in weights.items():
            if not value >= 0:
                raise ValueError(f"{name}={value!r}: expected a non-negative weight.")
        if ranking_loss == "none" and lambda_image_prior == lambda_text_prior == 0:
            raise ValueError("ranking_loss='none' with both prior weights 0: nothing would relate the two modalities.")
        self.image_input = image_input
        self.image_size = image_size
        self.in_channels = in_channels
        self.image_channels = image_channels
        self.image_res_layers = image_res_layers
        self.image_feature_dim = image_feature_dim
        self.image_decoder_hidden_size = image_decoder_hidden_size
        self.grid_feature_channels = grid_feature_channels
        self.grid_feature_dim = grid_feature_dim
        self.vocab_size = vocab_size
        self.max_text_length = max_text_length
        self.unk_token_id = unk_token_id
        self.word_embed_dim = word_embed_dim
        self.text_hidden_size = text_hidden_size
        self.text_num_layers = text_num_layers
        self.word_dropout = word_dropout
        self.latent_dim = latent_dim
        self.ranking_loss = ranking_loss
        self.margin = margin
        self.hardest_negatives = hardest_negatives
        self.lambda_image_reconstruction = lambda_image_reconstruction
        self.lambda_text_reconstruction = lambda_text_reconstruction
        self.lambda_image_prior = lambda_image_prior
        self.lambda_text_prior = lambda_text_prior
        self.lambda_ranking = lambda_ranking
        self.lambda_image_caption = lambda_image_caption
        self.critic_hidden_size = critic_hidden_size
        self.critic_num_layers = critic_num_layers
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)

    @property
    def uses_prior(self) -> bool:
        """Whether training needs the latent critic (some prior weight is positive)."""
        return self.lambda_image_prior > 0 or self.lambda_text_prior > 0

    @property
    def has_text_decoder(self) -> bool:
        """Whether the model builds the caption decoder g_t (some caption term is weighted)."""
        return self.lambda_text_reconstruction > 0 or self.lambda_image_caption > 0

    @property
    def encoded_feature_dim(self) -> int:
        """Size of the feature vector the linear image encoder reads (`"features"`, `"grid_features"`)."""
        if self.image_input == "grid_features":
            return 5 * self.in_channels * self.grid_feature_dim  # 4 quadrants + the pooled canvas, per channel
        return self.image_feature_dim

    @property
    def image_latent_size(self) -> int:
        """Side of the CNN feature map (`"pixels"`)."""
        return self.image_size // 2 ** len(self.image_channels)

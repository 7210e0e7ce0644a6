"""Configurations of LAViTeR ("LAViTeR: Learning Aligned Visual and Textual Representations Assisted by Image and
Caption Generation", Shaikh et al., arXiv:2109.04993; reference code github.com/mshaikh2/MMRL): the visual–text
alignment encoders (VTA), the text-to-image generator (TIM) and the image captioner (ITM)."""

from __future__ import annotations

from transformers import PretrainedConfig

from ...modules.transformer_text import SENTENCE_POOLINGS

__all__ = ["PHASES", "PLACE_CLASSIFIERS", "LaviterConfig", "LaviterTextConfig", "LaviterVisionConfig"]

_BACKBONES = ("cnn", "digit_grid", "inception_v3")
# the three training phases of section 4.3: pretrain VTA; pretrain TIM and ITM on VTA features; joint training
PHASES = ("vta", "generators", "joint")
PLACE_CLASSIFIERS = ("discriminator", "regions")  # where the classifier of place_label_classes sits


def _positive_ints(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive integer.")


class LaviterVisionConfig(PretrainedConfig):
    r"""The VTA image encoder: a global feature and a grid of region features, both of size `embed_dim`.

    Args:
        backbone (`str`, defaults to `"cnn"`): `"cnn"`, a small CNN trained from scratch (stride-2 levels down to the
            region grid), or `"inception_v3"`, torchvision's InceptionV3 with region features from `Mixed_6e`
            (17x17) and the global feature from the last pooling layer, as the paper; its ImageNet weights are read
            from `backbone_weights` (a local file: nothing is downloaded), images are resized to 299x299; or
            `"digit_grid"`, the Caption MNIST counterpart of that frozen ImageNet network: a small CNN pretrained as
            an MNIST digit classifier (`examples/jwae/pretrain_grid_features.py`, loaded by the training script's
            `--grid_features`) reads the four quadrants and the canvas pooled by 2, per colour channel; the five
            crops are the regions, each with a learned place embedding. That CNN never trains (only the projections
            and place embeddings do), whereas InceptionV3 is frozen in phase 1 only.
        backbone_weights (`str`, *optional*): path of the InceptionV3 state dict (`.pth` or `.safetensors`).
        image_size (`int`, defaults to 64), in_channels (`int`, defaults to 3): the input images, in [-1, 1].
        channels (`list[int]`, defaults to `[32, 64, 128]`): CNN channels per stride-2 level (`"cnn"`), or the
            digit CNN's conv widths per level (`"digit_grid"`, each followed by 2x2 pooling of the quadrant crop).
        grid_feature_dim (`int`, defaults to 64): the digit CNN's features per crop and channel (`"digit_grid"`).
        embed_dim (`int`, defaults to 128): size of the region, global, word and sentence features (paper: 256).
    """

    model_type = "laviter_vision"

    def __init__(
        self,
        backbone: str = "cnn",
        backbone_weights: str | None = None,
        image_size: int = 64,
        in_channels: int = 3,
        channels: list[int] | tuple[int, ...] = (32, 64, 128),
        embed_dim: int = 128,
        grid_feature_dim: int = 64,
        **kwargs,
    ):
        if backbone not in _BACKBONES:
            raise ValueError(f"backbone={backbone!r}: expected one of {_BACKBONES}.")
        channels = list(channels)
        _positive_ints(image_size=image_size, in_channels=in_channels, embed_dim=embed_dim)
        _positive_ints(grid_feature_dim=grid_feature_dim)
        if backbone == "cnn" and (not channels or image_size % 2 ** len(channels)):
            raise ValueError(
                f"image_size={image_size}, channels={channels}: image_size must be divisible by 2**len(channels)."
            )
        if backbone == "digit_grid" and (not channels or image_size % 2 ** (len(channels) + 1)):
            raise ValueError(
                f"image_size={image_size}, channels={channels}: the digit CNN reads quadrant crops of side "
                "image_size / 2, which must be divisible by 2**len(channels)."
            )
        self.backbone = backbone
        self.backbone_weights = backbone_weights
        self.image_size = image_size
        self.in_channels = in_channels
        self.channels = channels
        self.embed_dim = embed_dim
        self.grid_feature_dim = grid_feature_dim
        super().__init__(**kwargs)

    @property
    def num_regions(self) -> int:
        """Region features per image (the flattened grid; `"digit_grid"`: the four quadrants and the canvas)."""
        if self.backbone == "digit_grid":
            return 5
        side = 17 if self.backbone == "inception_v3" else self.image_size // 2 ** len(self.channels)
        return side * side


class LaviterTextConfig(PretrainedConfig):
    r"""The VTA text encoder: a transformer over word embeddings with learned positions (paper eqs. 1-3).

    Args:
        vocab_size (`int`, defaults to 64), max_length (`int`, defaults to 48): the caption tokenizer and the padded
            caption length ([BOS] ... [EOS] + padding).
        pad_token_id / bos_token_id / eos_token_id (`int`): the tokenizer's special ids.
        num_layers (`int`, defaults to 1), num_heads (`int`, defaults to 4), intermediate_size (`int`, defaults to
            256): the transformer (paper: 1 layer, 8 heads).
        embed_dim (`int`, defaults to 128): word embedding and feature size; must equal the vision `embed_dim`.
        sentence_pooling (`str`, defaults to `"mean"`): how the sentence feature pools the word features: `"mean"`
            (the paper's) or `"gru"` (a bidirectional GRU's final states; not in the paper: it can bind each digit and
            colour to its place, which the mean of the words need not do).
    """

    model_type = "laviter_text"

    def __init__(
        self,
        vocab_size: int = 64,
        max_length: int = 48,
        num_layers: int = 1,
        num_heads: int = 4,
        intermediate_size: int = 256,
        embed_dim: int = 128,
        sentence_pooling: str = "mean",
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        **kwargs,
    ):
        _positive_ints(vocab_size=vocab_size, max_length=max_length, num_layers=num_layers, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim}, num_heads={num_heads}: embed_dim must be divisible by it.")
        if sentence_pooling not in SENTENCE_POOLINGS:
            raise ValueError(f"sentence_pooling={sentence_pooling!r}: expected one of {SENTENCE_POOLINGS}.")
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.embed_dim = embed_dim
        self.sentence_pooling = sentence_pooling
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)


class LaviterConfig(PretrainedConfig):
    r"""Configuration of [`LaviterModel`]: VTA (image and text encoders, the DAMSM-style matching of eqs. 4-8), TIM
    (an AttnGAN-like cascade of generators, eqs. 9-11) and ITM (a transformer captioner, eqs. 12-14), trained
    together with the assisting matching losses (eq. 15) and the weights of eq. 16.

    Eq. 16 as we read Table 1 and its discussion: `L = λ1 L_TIM + λ2 L_ITM + λ3 L_fi-rt + λ4 L_ri-ft + λ5 L_VTA`,
    where L_fi-rt matches generated images with real captions and L_ri-ft real images with generated captions;
    `λ = (0, 0, 0, 0, 1)` trains only VTA in the joint phase (the paper's VTA-only baseline), `λ1 = λ3 = 0` drops
    the image generator's part (LAViTeR-Img2Txt), `λ2 = λ4 = 0` the captioner's (LAViTeR-Txt2Img).

    Args:
        vision_config (`dict` or [`LaviterVisionConfig`]), text_config (`dict` or [`LaviterTextConfig`]): the VTA
            encoders; their `embed_dim` must agree.
        use_tim (`bool`, defaults to `True`): build the text-to-image generator.
        use_itm (`bool`, defaults to `True`): build the captioner.
        gamma1, gamma2, gamma3 (`float`, defaults to 4.0, 5.0, 10.0): the attention sharpness of eq. 4, the
            most-relevant-word magnification of eq. 5 and the smoothing of the batch posterior of eq. 6 (AttnGAN's
            settings, as the paper).
        vta_swapped_negatives (`bool`, defaults to `False`): in L_VTA each caption must also rank its image above
            the same image with its left and right halves swapped and with its top and bottom halves swapped (extra
            negative images, eqs. 6-7's image-given-caption posteriors): the same objects at other places, which
            random in-batch images almost never are, so the encoders must carry where each object is. For captions
            that say where (Caption MNIST); leave it off where a swapped image may still match its caption. The
            matching of generated images (L_fi-rt) gets the same negatives: a generated image must beat its own
            swapped halves, which tells the generator where each object goes.
        vta_exchanged_quadrants (`bool`, defaults to `False`): the same for each image with two of its quadrants
            exchanged (six extra negatives per image): the same objects at the same places, but bound to each other's
            place, so the sentence feature must carry which object is where. For layouts of objects in quadrants
            (Caption MNIST).
        noise_dim (`int`, defaults to 32): the generator's noise vector.
        condition_dim (`int`, defaults to 32): the conditioning-augmentation code of the sentence feature.
        generator_channels (`int`, defaults to 32): generator width (AttnGAN: 32 per stage after the first).
        num_generator_stages (`int`, defaults to 3): cascaded generators, each doubling the resolution; the last
            produces `image_size` (paper: 3 stages, 64, 128, 256).
        generator_attention_positions (`bool`, defaults to `False`): add a learned position embedding (initialised to
            2-D sine-cosine positions) to each image position's query in the generator's word attention, so a
            position can attend to the words that name its place ("upper left"). AttnGAN's attention has none: on
            birds every position may attend to every word, but a Caption MNIST layout binds words to places.
        generator_first_stage_attention (`bool`, defaults to `False`): the first stage's 4x4 features attend to the
            words too (with the positions above when those are on): AttnGAN's first stage reads the sentence
            feature alone, which decides the layout before any word is attended.
        generator_word_context (`bool`, defaults to `False`): the generator re-reads the word features with one
            self-attention layer of its own before attending to them (in phase 2 the text encoder is frozen, and its
            words were trained to match image regions by content, not to carry where their object is).
        generator_word_rnn (`bool`, defaults to `False`): a bidirectional GRU of the generator's own reads the word
            features in order: its final states join the noise and the sentence's condition that the first stage's
            4x4 layout is drawn from, and its outputs at each word replace the word features that the generator's
            word attention reads. The word attention's place queries must find each place's words by
            their features, and words trained to match image regions by content barely carry which place their
            object is at (on Caption MNIST, a supervised read-out of each quadrant's digit from the frozen phase-1
            words through that attention reached 0.68 in 1,500 steps, through a GRU 0.97).
        discriminator_channels (`int`, defaults to 32): width of each stage's discriminator (built by training).
        discriminator_place_words (`bool`, defaults to `False`): each discriminator's conditional branch also reads
            what the words say about each place of its 4x4 grid (`mmquant.modules.discriminator.PlaceWords`); the
            sentence feature alone names the objects but not where each one is.
        discriminator_swapped_halves (`bool`, defaults to `False`): real images with their left and right halves
            swapped (and, separately, their top and bottom halves), each with its own caption, are also mismatched
            pairs for the discriminators' conditional branch. For captions that say where each object is (Caption
            MNIST) these are the pairs that differ only in place, which random mismatched captions almost never are;
            leave it off for captions that name no place, where a swapped image may still match.
        discriminator_word_rnn (`bool`, defaults to `False`): each discriminator's conditional branch also reads the
            words in order with a bidirectional GRU of its own (the sentence feature barely tells which object is
            where; a GRU over the same words does).
        discriminator_exchanged_quadrants (`bool`, defaults to `False`): real images with two of their quadrants
            exchanged (each of the six pairs), each with its own caption, are also mismatched pairs for the
            discriminators' conditional branch: the same objects at the same places but bound to each other's
            place. For layouts of objects in quadrants (Caption MNIST).
        lambda_fake_image_damsm (`float`, defaults to 5.0): λ of eq. 11, weight of the generated-image matching.
        lambda_redescription (`float`, defaults to 0.0): weight of a redescription term in L_TIM, an addition to the
            paper's eq. 11 after MirrorGAN (Qiao et al. 2019, which LAViTeR cites as its inspiration): the captioner's
            cross-entropy (eq. 14) of the real caption given the last stage's generated image, read through the image
            encoder and the captioner with their weights held fixed, so it trains the generator (and, in the joint
            phase, the text encoder that conditions it) and never the captioner or the image encoder. The captioner
            tells which digit and colour it sees at which place, which DAMSM's scores barely do on Caption MNIST.
            Needs the captioner (`use_itm`).
        lambda_image_match (`float`, defaults to 0.0): weight of an image-to-image contrastive term in L_TIM, an
            addition to the paper's eq. 11 after XMC-GAN (Zhang et al. 2021): the global feature of each generated
            image, read by the image encoder with its weights held fixed, must be nearer its pair's real image than
            the batch's other real images (InfoNCE, temperature 0.1). The image features carry which object is where
            even where the sentence feature does not, so this tells the generator which digit and colour go to which
            place. Trains the generator (and, in the joint phase, the text encoder that conditions it).
        lambda_pixel (`float`, defaults to 0.0): weight of a pixel reconstruction term in L_TIM, an addition to the
            paper's eq. 11 after pix2pix (Isola et al. 2017): the mean squared difference between each stage's
            generated image and its pair's real image at that stage's size, summed over the stages. Where a caption
            fixes what is where (Caption MNIST: a digit of a colour in a quadrant), this tells the generator directly
            which digit and colour to draw at which place; the discriminators keep the images sharp. Squared, not
            pix2pix's absolute difference: on sparse canvases the absolute difference is least for the per-pixel
            median, a black image. It pulls every noise towards the captions' average image, so it trades diversity
            for following the caption. Trains the generator (and, in the joint phase, the text encoder that
            conditions it).
        place_label_classes (`list[int]`, *optional*): an auxiliary classifier in each discriminator, an addition to
            the paper after AC-GAN (Odena et al. 2017): for each place of a 2x2 grid (the quadrants) it predicts one
            label per entry of this list, with that many classes (Caption MNIST: the digit and the colour, class 0
            for an empty quadrant). The discriminators learn it on real images; the generator is trained to make its
            images classified as their captions say (`lambda_place_labels`), which tells it what each digit looks
            like, not only that the image is real. The training loop passes the labels (`place_labels` of
            `forward`). `None` (default): no classifier.
        place_classifier (`str`, defaults to `"discriminator"`): where the classifier of `place_label_classes` sits.
            `"discriminator"`: a head on each discriminator's features (AC-GAN). `"regions"`: one linear head of the
            model on the image encoder's region features of each quadrant (the frozen digit CNN's quadrant crops
            with the `digit_grid` backbone; the regions average-pooled to 2x2 otherwise), learnt on real images'
            regions (detached), with the generated images' regions read through fixed weights. A head on a frozen
            pretrained network reads generated images as it reads real ones; the discriminators' head, learnt on
            real images only beside the adversarial features, gave near-constant answers on generated images
            (Caption MNIST probe: 3% of their digits read as the caption says, where the judge reads 50%).
        lambda_place_labels (`float`, defaults to 1.0): weight of the auxiliary classification, in the
            discriminators' loss (real images) and in L_TIM (generated images), with `place_label_classes`.
        image_match_exchanged_quadrants (`bool`, defaults to `False`): in the image-match term each generated image
            must also be nearer its real image than that real image with any two of its quadrants exchanged (six
            extra negatives each): the same contents at the same places but bound to each other's place, which random
            batch images almost never are. For layouts of objects in quadrants (Caption MNIST).
        captioner_num_layers (`int`, defaults to 2), captioner_num_heads (`int`, defaults to 4): the ITM encoder over
            region features and the GPT-2 style caption decoder with cross-attention (paper: 6 layers, 8 heads).
        captioner_frozen_layers (`int`, defaults to 1): in the joint phase the first layers of the captioner's
            encoder and decoder are frozen (paper: 5 of 6).
        lambda_tim, lambda_itm, lambda_fake_image, lambda_fake_text, lambda_vta (`float`): λ1..λ5 of eq. 16
            (defaults 0.01, 0.1, 1, 1, 10: the paper's best CUB row).

    Example:
    >>> from mmquant import LaviterConfig, LaviterModel
    >>> config = LaviterConfig(vision_config={"image_size": 32, "channels": [8, 16]}, num_generator_stages=2)
    >>> config.generator_sizes
    [16, 32]
    >>> model = LaviterModel(config)
    """

    model_type = "laviter"
    sub_configs = {"vision_config": LaviterVisionConfig, "text_config": LaviterTextConfig}

    def __init__(
        self,
        vision_config: dict | LaviterVisionConfig | None = None,
        text_config: dict | LaviterTextConfig | None = None,
        use_tim: bool = True,
        use_itm: bool = True,
        gamma1: float = 4.0,
        gamma2: float = 5.0,
        gamma3: float = 10.0,
        vta_swapped_negatives: bool = False,
        vta_exchanged_quadrants: bool = False,
        noise_dim: int = 32,
        condition_dim: int = 32,
        generator_channels: int = 32,
        num_generator_stages: int = 3,
        generator_attention_positions: bool = False,
        generator_first_stage_attention: bool = False,
        generator_word_context: bool = False,
        generator_word_rnn: bool = False,
        discriminator_channels: int = 32,
        discriminator_place_words: bool = False,
        discriminator_swapped_halves: bool = False,
        discriminator_word_rnn: bool = False,
        discriminator_exchanged_quadrants: bool = False,
        lambda_fake_image_damsm: float = 5.0,
        lambda_redescription: float = 0.0,
        lambda_image_match: float = 0.0,
        lambda_pixel: float = 0.0,
        place_label_classes: list[int] | None = None,
        lambda_place_labels: float = 1.0,
        place_classifier: str = "discriminator",
        image_match_exchanged_quadrants: bool = False,
        captioner_num_layers: int = 2,
        captioner_num_heads: int = 4,
        captioner_frozen_layers: int = 1,
        lambda_tim: float = 0.01,
        lambda_itm: float = 0.1,
        lambda_fake_image: float = 1.0,
        lambda_fake_text: float = 1.0,
        lambda_vta: float = 10.0,
        **kwargs,
    ):
        vision = vision_config if isinstance(vision_config, LaviterVisionConfig) else None
        text = text_config if isinstance(text_config, LaviterTextConfig) else None
        self.vision_config = vision or LaviterVisionConfig(**(vision_config or {}))
        self.text_config = text or LaviterTextConfig(**(text_config or {}))
        if self.vision_config.embed_dim != self.text_config.embed_dim:
            raise ValueError(
                f"vision_config.embed_dim={self.vision_config.embed_dim} and text_config.embed_dim="
                f"{self.text_config.embed_dim}: the two encoders embed into one space; make them equal."
            )
        _positive_ints(
            noise_dim=noise_dim,
            condition_dim=condition_dim,
            generator_channels=generator_channels,
            num_generator_stages=num_generator_stages,
            discriminator_channels=discriminator_channels,
            captioner_num_layers=captioner_num_layers,
            captioner_num_heads=captioner_num_heads,
        )
        smallest = self.vision_config.image_size // 2 ** (num_generator_stages - 1)
        if use_tim and (smallest < 8 or self.vision_config.image_size % 2 ** (num_generator_stages - 1)):
            raise ValueError(
                f"num_generator_stages={num_generator_stages} with image_size={self.vision_config.image_size}: the "
                "first stage would be smaller than 8x8 or not whole; use fewer stages."
            )
        if use_tim and generator_attention_positions and generator_channels % 4:
            raise ValueError(
                f"generator_attention_positions=True with generator_channels={generator_channels}: the 2-D position "
                "embedding needs a multiple of 4 channels; change generator_channels or turn the positions off."
            )
        if not 0 <= captioner_frozen_layers <= captioner_num_layers:
            raise ValueError(
                f"captioner_frozen_layers={captioner_frozen_layers}: expected 0..captioner_num_layers="
                f"{captioner_num_layers}."
            )
        if self.text_config.embed_dim % captioner_num_heads:
            raise ValueError(f"captioner_num_heads={captioner_num_heads}: must divide embed_dim.")
        weights = dict(
            gamma1=gamma1,
            gamma2=gamma2,
            gamma3=gamma3,
            lambda_fake_image_damsm=lambda_fake_image_damsm,
            lambda_redescription=lambda_redescription,
            lambda_image_match=lambda_image_match,
            lambda_pixel=lambda_pixel,
            lambda_place_labels=lambda_place_labels,
            lambda_tim=lambda_tim,
            lambda_itm=lambda_itm,
            lambda_fake_image=lambda_fake_image,
            lambda_fake_text=lambda_fake_text,
            lambda_vta=lambda_vta,
        )
        for name, value in weights.items():
            if not value >= 0:
                raise ValueError(f"{name}={value!r}: expected a non-negative number.")
        if not use_tim and (lambda_tim or lambda_fake_image):
            raise ValueError("use_tim=False: set lambda_tim and lambda_fake_image to 0 (there is no generator).")
        if not use_itm and (lambda_itm or lambda_fake_text):
            raise ValueError("use_itm=False: set lambda_itm and lambda_fake_text to 0 (there is no captioner).")
        if lambda_redescription and not (use_tim and use_itm):
            raise ValueError(
                f"lambda_redescription={lambda_redescription}: the redescription term needs both the generator and "
                "the captioner; set use_tim=True and use_itm=True, or lambda_redescription=0."
            )
        if place_label_classes is not None:
            classes = list(place_label_classes) if isinstance(place_label_classes, (list, tuple)) else None
            if not classes or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in classes):
                raise ValueError(
                    f"place_label_classes={place_label_classes!r}: expected a list of class counts, each an integer "
                    ">= 2 (Caption MNIST: [11, number of colours + 1]), or None for no auxiliary classifier."
                )
            place_label_classes = classes
        if place_classifier not in PLACE_CLASSIFIERS:
            raise ValueError(f"place_classifier={place_classifier!r}: expected one of {PLACE_CLASSIFIERS}.")
        self.use_tim = use_tim
        self.use_itm = use_itm
        self.gamma1, self.gamma2, self.gamma3 = gamma1, gamma2, gamma3
        self.vta_swapped_negatives = bool(vta_swapped_negatives)
        self.vta_exchanged_quadrants = bool(vta_exchanged_quadrants)
        self.noise_dim = noise_dim
        self.condition_dim = condition_dim
        self.generator_channels = generator_channels
        self.num_generator_stages = num_generator_stages
        self.generator_attention_positions = bool(generator_attention_positions)
        self.generator_first_stage_attention = bool(generator_first_stage_attention)
        self.generator_word_context = bool(generator_word_context)
        self.generator_word_rnn = bool(generator_word_rnn)
        self.discriminator_channels = discriminator_channels
        self.discriminator_place_words = bool(discriminator_place_words)
        self.discriminator_swapped_halves = bool(discriminator_swapped_halves)
        self.discriminator_word_rnn = bool(discriminator_word_rnn)
        self.discriminator_exchanged_quadrants = bool(discriminator_exchanged_quadrants)
        self.lambda_fake_image_damsm = lambda_fake_image_damsm
        self.lambda_redescription = lambda_redescription
        self.lambda_image_match = lambda_image_match
        self.lambda_pixel = lambda_pixel
        self.place_label_classes = place_label_classes
        self.lambda_place_labels = lambda_place_labels
        self.place_classifier = place_classifier
        self.image_match_exchanged_quadrants = bool(image_match_exchanged_quadrants)
        self.captioner_num_layers = captioner_num_layers
        self.captioner_num_heads = captioner_num_heads
        self.captioner_frozen_layers = captioner_frozen_layers
        self.lambda_tim = lambda_tim
        self.lambda_itm = lambda_itm
        self.lambda_fake_image = lambda_fake_image
        self.lambda_fake_text = lambda_fake_text
        self.lambda_vta = lambda_vta
        super().__init__(**kwargs)

    @property
    def embed_dim(self) -> int:
        return self.text_config.embed_dim

    @property
    def discriminator_place_classes(self) -> list[int]:
        """The classes of `place_label_classes` when the discriminators predict them (AC-GAN), else ``[]``."""
        return list(self.place_label_classes or []) if self.place_classifier == "discriminator" else []

    @property
    def generator_sizes(self) -> list[int]:
        """Image side of each generator stage, smallest first."""
        size = self.vision_config.image_size
        return [size // 2 ** (self.num_generator_stages - 1 - i) for i in range(self.num_generator_stages)]

"""Building blocks shared by the models (encoders, decoders, transformer blocks)."""

from .conv_autoencoder import PlainCNNDecoder, PlainCNNEncoder, build_image_decoder, build_image_encoder

__all__ = ["PlainCNNDecoder", "PlainCNNEncoder", "build_image_decoder", "build_image_encoder"]

"""The VQ-VAE image encoder and decoder (van den Oord et al. 2017, as the MXQ-VAE reference code uses them):
4x4 stride-2 convolutions down, a stack of residual blocks, a 1x1 projection; the decoder mirrors it with 4x4
stride-2 transposed convolutions."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["ResidualCNNDecoder", "ResidualCNNEncoder", "ResidualStack"]


class ResidualStack(nn.Module):
    """``num_layers`` blocks ``x + conv1x1(relu(conv3x3(relu(x))))``, then ReLU; keeps ``(B, C, H, W)``."""

    def __init__(self, channels: int, num_layers: int, hidden_channels: int | None = None):
        super().__init__()
        hidden = hidden_channels or channels
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, 1, bias=False),
            )
            for _ in range(num_layers)
        )
        self.out = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class ResidualCNNEncoder(nn.Module):
    """``(B, in_channels, H, W)`` -> ``(B, out_channels, H / 2^n, W / 2^n)`` with ``n = len(channels)``."""

    def __init__(
        self, in_channels: int, out_channels: int, channels: Sequence[int] = (64, 128, 256), num_res_layers=2
    ):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in channels:  # each halves the resolution
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.ReLU()]
            prev = ch
        layers += [
            nn.Conv2d(prev, prev, 3, padding=1),
            ResidualStack(prev, num_res_layers),
            nn.Conv2d(prev, out_channels, 1),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ResidualCNNDecoder(nn.Module):
    """``(B, in_channels, h, w)`` -> ``(B, out_channels, h * 2^n, w * 2^n)``, the mirror of
    :class:`ResidualCNNEncoder` (``channels`` given encoder-side)."""

    def __init__(
        self, in_channels: int, out_channels: int, channels: Sequence[int] = (64, 128, 256), num_res_layers=2
    ):
        super().__init__()
        rev = list(reversed(channels))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, rev[0], 3, padding=1), ResidualStack(rev[0], num_res_layers)]
        for prev, ch in zip(rev, rev[1:]):
            layers += [nn.ConvTranspose2d(prev, ch, 4, stride=2, padding=1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(rev[-1], out_channels, 4, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

"""Linear read-outs of what a representation carries (probes of learned image and caption features): the content
labels of Caption MNIST pairs per position, and the test accuracy of a multinomial logistic regression fitted on
features. Used by the jWAE and LAViTeR probe scripts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["content_labels", "linear_readout"]


def content_labels(objects_per_pair: list[list[dict]], positions: list[str], colors: list[str]) -> dict:
    """Per position, the digit (0-9, 10 = empty) and colour (index in ``colors``, len(colors) = empty) of each pair."""
    labels = {}
    for position in positions:
        digit, color = [], []
        for objects in objects_per_pair:
            here = [o for o in objects if o["position"] == position]
            digit.append(int(here[0]["digit"]) if here else 10)
            color.append(colors.index(here[0]["color"]) if here else len(colors))
        labels[f"{position}/digit"] = torch.tensor(digit)
        labels[f"{position}/color"] = torch.tensor(color)
    return labels


def linear_readout(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Test accuracy of a multinomial logistic regression (L-BFGS, small L2) on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / std, (test_x - mean) / std
    classes = int(max(train_y.max(), test_y.max())) + 1
    generator = torch.Generator().manual_seed(0)
    weight = (torch.randn(a.shape[1], classes, generator=generator) * 0.01).requires_grad_()
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, train_y) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(((b @ weight + bias).argmax(1) == test_y).float().mean())

"""Ranking and prior-matching losses: max-hinge against a brute-force loop, the critic's and the encoder's sides of
the adversarial divergence touch only their own parameters, and the Fréchet statistic on known distributions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmquant.losses import (
    LatentCritic,
    critic_loss,
    gaussian_frechet_distance,
    max_hinge_loss,
    paired_mse_loss,
    prior_matching_loss,
)


def _hinge_by_loop(v, t, margin, hardest):
    v, t = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
    n, total = len(v), 0.0
    for i in range(n):
        pos = float(v[i] @ t[i])
        caption_costs = [max(0.0, margin - pos + float(v[i] @ t[j])) for j in range(n) if j != i]
        image_costs = [max(0.0, margin - pos + float(v[j] @ t[i])) for j in range(n) if j != i]
        if hardest:
            total += max(caption_costs) + max(image_costs)
        else:
            total += sum(caption_costs) + sum(image_costs)
    return total / n


@pytest.mark.parametrize("hardest", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_hinge_matches_a_loop(hardest, seed):
    g = torch.Generator().manual_seed(seed)
    v, t = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    assert float(max_hinge_loss(v, t, 0.2, hardest)) == pytest.approx(_hinge_by_loop(v, t, 0.2, hardest), abs=1e-5)


def test_max_hinge_is_zero_for_well_separated_pairs_and_positive_otherwise():
    v = torch.eye(4) * 3
    assert float(max_hinge_loss(v, v.clone())) == 0.0
    assert float(max_hinge_loss(v, v.roll(1, 0))) > 0


def test_paired_losses_reject_mismatched_batches():
    with pytest.raises(ValueError, match="image_embeds"):
        max_hinge_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="text_embeds"):
        paired_mse_loss(torch.randn(3, 4), torch.randn(3, 5))


def test_critic_and_encoder_sides_train_only_their_own_parameters():
    critic = LatentCritic(6, hidden_size=8)
    encoder = torch.nn.Linear(3, 6)
    latents = encoder(torch.randn(10, 3))
    # the encoder's side: gradients reach the encoder, never the critic
    prior_matching_loss(critic, latents).backward()
    assert all(p.grad is None for p in critic.parameters())
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    encoder.zero_grad()
    # the critic's side: gradients reach the critic, never the encoder
    loss = critic_loss(critic, encoder(torch.randn(10, 3)), torch.randn(10, 6))
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())
    assert encoder.weight.grad is None


def test_critic_learns_to_tell_the_prior_from_shifted_latents():
    torch.manual_seed(0)
    critic = LatentCritic(4, hidden_size=16)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    start = None
    for _ in range(100):
        loss = critic_loss(critic, torch.randn(64, 4) + 2.0, torch.randn(64, 4))
        start = start if start is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 < start  # ln 2 = 0.69 at chance
    assert float(prior_matching_loss(critic, torch.randn(64, 4) + 2.0)) > float(
        prior_matching_loss(critic, torch.randn(64, 4))
    )


def test_gaussian_frechet_distance_on_known_distributions():
    torch.manual_seed(0)
    assert float(gaussian_frechet_distance(torch.randn(20000, 4))) < 0.01
    # N(mu, s^2 I): (|mu|^2 + D (1 - s)^2) / D
    z = torch.randn(20000, 4) * 3 + 1
    assert float(gaussian_frechet_distance(z)) == pytest.approx((4 * 1 + 4 * (1 - 3) ** 2) / 4, rel=0.03)
    with pytest.raises(ValueError, match="latents"):
        gaussian_frechet_distance(torch.randn(1, 4))


def test_critic_rejects_wrong_latent_size():
    with pytest.raises(ValueError, match="latent_dim=6"):
        LatentCritic(6)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="prior_samples"):
        critic_loss(LatentCritic(6), torch.randn(2, 6), torch.randn(2, 5))

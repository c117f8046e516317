"""Super-resolution networks: the pixel shuffle against torch, shapes, EDSR-lite's size, the GAN stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlpractice.models.sr import (
    SRCNN,
    Discriminator,
    EDSRLite,
    adversarial_finetune,
    pixel_shuffle,
    relativistic_losses,
)


def test_pixel_shuffle_matches_torch() -> None:
    x = torch.randn(2, 27, 4, 5)
    assert torch.equal(pixel_shuffle(x, 3), F.pixel_shuffle(x, 3))


def test_generators_upscale_by_four_and_edsr_lite_has_172k_parameters() -> None:
    lr, hr = torch.rand(2, 3, 10, 12), torch.rand(2, 3, 40, 48)
    for model in (SRCNN(4, (8, 4)), EDSRLite(4, 8, 2)):
        out, loss = model(lr, hr)
        assert out.shape == hr.shape and loss.item() == F.l1_loss(out, hr).item()
        assert model(lr)[1] is None
    assert sum(p.numel() for p in EDSRLite().parameters()) == 171_984


def test_relativistic_losses_reward_the_critic_for_ranking_real_above_fake() -> None:
    real, fake = torch.tensor([3.0, 2.0]), torch.tensor([-2.0, -3.0])
    d_good, g_bad = relativistic_losses(real, fake)
    d_bad, g_good = relativistic_losses(fake, real)
    assert d_good < d_bad and g_good < g_bad
    assert torch.isclose(d_good, g_good)  # the game is symmetric


class TinyPatches:
    def train_batch(self, batch_size: int, generator: torch.Generator):
        lr = torch.rand(batch_size, 3, 8, 8, generator=generator)
        return lr, F.interpolate(lr, scale_factor=4, mode="nearest")


def test_adversarial_finetune_updates_the_generator_and_logs_every_loss() -> None:
    torch.manual_seed(0)
    generator, critic = EDSRLite(4, 4, 1), Discriminator(4)
    before = [p.detach().clone() for p in generator.parameters()]
    history = adversarial_finetune(
        generator, critic, TinyPatches(), 2, 2, 1e-3, (0.01, 1.0, 0.005), torch.Generator().manual_seed(0)
    )
    assert [h["step"] for h in history] == [1, 2]
    assert set(history[0]) == {"step", "d_loss", "l1", "perceptual", "adversarial"}
    assert any(not torch.equal(a, b) for a, b in zip(before, generator.parameters()))
    assert not generator.training

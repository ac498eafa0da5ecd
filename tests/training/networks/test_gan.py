"""The GAN networks: shapes, resize-convolution upsampling, per-sample behaviour, sizes and FLOPs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from training.networks.gan import (
    Critic,
    GANConfig,
    Generator,
    UpConv,
    count_parameters,
    critic_flops,
    generator_flops,
    init_weights,
)

TINY = GANConfig(input_dim=16, image_size=64, g_width=4, g_max_width=32, d_width=4, d_max_width=32)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_generator_and_critic_shapes(size):
    config = GANConfig(input_dim=16, image_size=size, g_width=2, g_max_width=16, d_width=2, d_max_width=16)
    generator, critic = Generator(config), Critic(config)
    images = generator(torch.randn(3, 16))
    assert images.shape == (3, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1
    scores = critic(images)
    assert scores.shape == (3,)
    assert torch.isfinite(scores).all()


def test_paper_generator_is_dcgan_shaped_from_2048_to_256():
    config = GANConfig()
    assert config.generator_channels() == [2048, 1024, 512, 256, 128, 64]
    assert config.critic_channels() == [64, 128, 256, 512, 1024, 2048]
    with torch.device("meta"):
        generator, critic = Generator(config), Critic(config)
    # Resize + 3×3 convolutions hold fewer weights than the reference's 4×4 transposed ones (112 M).
    assert 90e6 < count_parameters(generator) < 95e6
    assert 40e6 < count_parameters(critic) < 50e6
    # 5.6 GFLOP of useful work per tile, plus the shared phase convolutions' one-pixel border from 32 px on.
    assert 5.6e9 < generator_flops(config) < 5.8e9


def test_no_transposed_convolutions_and_no_batchnorm_in_the_critic():
    generator, critic = Generator(TINY), Critic(TINY)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in generator.modules())
    assert sum(isinstance(m, UpConv) for m in generator.modules()) == TINY.n_doublings
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm) for m in critic.modules()
    )


@pytest.mark.parametrize("height, width", [(6, 9), (20, 17)])  # per-phase and shared convolutions
def test_folded_upconv_equals_nearest_resize_then_3x3_convolution(height, width):
    torch.manual_seed(0)
    up = UpConv(5, 7, "nearest")
    x = torch.randn(2, 5, height, width, requires_grad=True)
    reference = up.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    folded = up(x)
    assert folded.shape == (2, 7, 2 * height, 2 * width)
    torch.testing.assert_close(folded, reference, rtol=1e-5, atol=1e-5)
    grad_ref = torch.autograd.grad(reference.square().sum(), [x, up.conv.weight])
    grad_fold = torch.autograd.grad(up(x).square().sum(), [x, up.conv.weight])
    for a, b in zip(grad_fold, grad_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_sampling_refolds_the_kernel_when_the_weights_change():
    up = UpConv(3, 4, "nearest")
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        up(x)  # folds and keeps the kernel
        up.conv.weight.mul_(-2.0)  # an in-place update, as an optimiser step or load_state_dict does
        torch.testing.assert_close(up(x), up.conv(F.interpolate(x, scale_factor=2)), rtol=1e-5, atol=1e-5)


def test_bilinear_upsampling_is_available():
    config = GANConfig(
        input_dim=8, image_size=64, g_width=2, g_max_width=8, d_width=2, d_max_width=8, upsample="bilinear"
    )
    assert Generator(config)(torch.randn(2, 8)).shape == (2, 3, 64, 64)


def test_eval_generator_and_critic_treat_each_sample_alone():
    torch.manual_seed(1)
    generator, critic = Generator(TINY), Critic(TINY)
    init_weights(generator)
    generator(torch.randn(8, 16))  # move BatchNorm's running statistics away from their init
    generator.eval()
    z = torch.randn(5, 16)
    with torch.no_grad():
        together = generator(z)
        alone = torch.cat([generator(z[k : k + 1]) for k in range(5)])
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(critic(together)[:2], critic(together[:2]), rtol=1e-5, atol=1e-6)


def test_a_batch_of_one_trains():
    generator = Generator(TINY).train()
    out = generator(torch.randn(1, 16))
    out.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in generator.parameters() if p.grad is not None)


def test_flop_formulas_match_torch_flop_counter():
    for config in (
        TINY,
        GANConfig(input_dim=16, image_size=128, g_width=4, g_max_width=32, upsample="bilinear"),
    ):
        generator, z = Generator(config).eval(), torch.randn(1, config.input_dim)
        with torch.no_grad():
            generator(z)  # folds the kernels once; sampling reuses them
            with FlopCounterMode(display=False) as counter:
                generator(z)
        assert counter.get_total_flops() == generator_flops(config)
        with FlopCounterMode(display=False) as counter:
            Critic(config)(torch.randn(1, 3, config.image_size, config.image_size))
        assert counter.get_total_flops() == critic_flops(config)


def test_config_rejects_unsupported_sizes():
    with pytest.raises(ValueError, match="image_size"):
        GANConfig(image_size=96)
    with pytest.raises(ValueError, match="upsample"):
        GANConfig(upsample="transposed")

"""Inception features come only from a file shaped like pytorch-fid's weights (anything else is a clear
error, nothing is downloaded); the in-domain encoder learns to tell slides apart and reloads exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.metrics.features import (
    EncoderConfig,
    InceptionWeightsError,
    fid_inception,
    load_encoder,
    load_inception,
    train_encoder,
)


def test_a_missing_or_unreadable_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(InceptionWeightsError, match="no such file"):
        load_inception(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InceptionWeightsError, match="not a PyTorch state dict"):
        load_inception(junk)


def test_weights_of_another_network_are_refused(tmp_path):
    other = tmp_path / "resnet.pth"
    from torchvision.models import resnet18

    torch.save(resnet18(weights=None, num_classes=1000).state_dict(), other)
    with pytest.raises(InceptionWeightsError, match="fc.weight has shape"):
        load_inception(other)
    # The right classifier shape but other layers: named, not a traceback.
    torch.save({"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008), "conv.weight": torch.zeros(1)},
               other)
    with pytest.raises(InceptionWeightsError, match="missing"):
        load_inception(other)


def test_a_file_in_pytorch_fid_format_loads_and_gives_pool_features(tmp_path):
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) * 0.01 if v.is_floating_point() else v for k, v in fid_inception().state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    state |= {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    for k in [k for k in state if k.endswith("running_var")]:
        state[k] = torch.ones_like(state[k])
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    features = load_inception(path)(np.zeros((2, 64, 64, 3), np.uint8))
    assert features.shape == (2, 2048) and np.isfinite(features).all()


def test_the_encoder_separates_slides_and_reloads_identically(small_cohort, tmp_path):
    truth, tiles, owners = small_cohort
    airy = truth.set_index("sample_id")["airspace_fraction"]
    labels = [int(airy[o] > airy.median()) for o in owners]  # two groups of samples that look different
    encoder = train_encoder(tiles, labels, EncoderConfig(epochs=30, batch_size=16, width=8, feature_dim=16, lr=5e-3, min_steps=0))
    from training.metrics.features import resize_batch, to_float

    with torch.no_grad():
        predicted = encoder.model(resize_batch(to_float(tiles), 64)).argmax(1).numpy()
    assert (predicted == np.array(labels)).mean() >= 0.8
    encoder.save(tmp_path)
    again = load_encoder(tmp_path)
    assert np.allclose(encoder(tiles), again(tiles), atol=1e-6)
    assert encoder(tiles).shape == (len(tiles), 16)

"""The TDNN: statistics pooling against torch.std_mean, a dilated frame layer against Kaldi-style frame
splicing (the TDNN's definition), and padded batches that give each utterance's own logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.errors import DlpError
from dlpractice.models.tdnn import TDNN, VARIANCE_FLOOR, FrameLayer, statistics_pooling


def test_statistics_pooling_matches_std_mean_over_each_length() -> None:
    torch.manual_seed(0)
    h = torch.randn(3, 5, 9)  # (B, C, T)
    lengths = torch.tensor([9, 4, 1])
    h[1, :, 4:] = 1e3  # padding must not move the statistics
    pooled = statistics_pooling(h, lengths)
    for b, n in enumerate(lengths.tolist()):
        std, mean = torch.std_mean(h[b, :, :n], dim=-1, unbiased=False)
        expected = torch.cat([mean, (std**2 + VARIANCE_FLOOR).sqrt()])
        torch.testing.assert_close(pooled[b], expected, rtol=1e-5, atol=1e-6)
    full = statistics_pooling(h)
    std, mean = torch.std_mean(h, dim=-1, unbiased=False)
    torch.testing.assert_close(full, torch.cat([mean, (std**2 + VARIANCE_FLOOR).sqrt()], 1))


def test_dilated_frame_layer_is_a_linear_map_of_spliced_frames() -> None:
    """Kaldi's TDNN layer: output frame t = W [x(t), x(t+d), ..., x(t+(k-1)d)] + b, then ReLU and BN."""
    torch.manual_seed(0)
    layer = FrameLayer(4, 6, kernel=3, dilation=2).eval()
    x = torch.randn(2, 4, 12)  # (B, C, T)
    spliced = torch.cat([x[:, :, i * 2 : 12 - (2 - i) * 2] for i in range(3)], dim=1)  # (B, 3C, T - 4)
    weight = layer.conv.weight.permute(0, 2, 1).reshape(6, 12)  # (C_out, k * C_in), offsets outermost
    linear = torch.einsum("oi,bit->bot", weight, spliced) + layer.conv.bias[:, None]
    torch.testing.assert_close(layer(x), layer.norm(F.relu(linear)), rtol=1e-5, atol=1e-5)


def test_padded_batch_gives_each_utterance_its_own_logits_and_loss() -> None:
    torch.manual_seed(0)
    model = TDNN(n_features=5, n_classes=3, channels=8, pooled_channels=12, embed_dim=6).eval()
    a, b = torch.randn(30, 5), torch.randn(18, 5)  # (T, F) utterances of different lengths
    x = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)  # (2, 30, 5)
    x[1, 18:] = 7.0  # whatever the padding holds
    logits, _ = model(x, lengths=torch.tensor([30, 18]))
    alone = torch.cat([model(a[None])[0], model(b[None])[0]])
    torch.testing.assert_close(logits, alone, rtol=1e-5, atol=1e-5)
    targets = torch.tensor([2, 0])
    _, loss = model(torch.stack([a[:18], b]), targets)
    assert loss.item() == pytest.approx(F.cross_entropy(model(torch.stack([a[:18], b]))[0], targets).item())
    assert model.embed(x, torch.tensor([30, 18])).shape == (2, 6)


def test_too_short_input_is_one_line_error() -> None:
    model = TDNN(n_features=5, n_classes=3, channels=8, pooled_channels=12, embed_dim=6)
    assert model.context == 15
    with pytest.raises(DlpError, match="at least 15 frames"):
        model(torch.randn(1, 14, 5))

"""The l3-l7 models: written-out recurrent cells equal nn.RNN/LSTM/GRU, attention is causal, shapes hold."""

import pytest
import torch

import dlpractice.models.makemore as makemore
from dlpractice.models.makemore import (
    FlattenConsecutive,
    RecurrentLM,
    SeqBatchNorm,
    Transformer,
    WaveNet,
    copy_recurrent_weights,
    generate,
    left_align,
    name_rows,
    name_sequences,
)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_layer_models_agree_and_gradients_too(cell):
    torch.manual_seed(1)
    ours = RecurrentLM(27, 16, 8, 12, cell, n_layer=2, use_torch=False)
    theirs = RecurrentLM(27, 16, 8, 12, cell, n_layer=2, use_torch=True)
    copy_recurrent_weights(ours, theirs)
    x, y = name_sequences([[1, 2, 3], [4, 5, 6, 7, 8]], 16)
    (logits_a, loss_a), (logits_b, loss_b) = ours(x, y), theirs(x, y)
    torch.testing.assert_close(logits_a, logits_b, atol=1e-5, rtol=0)
    loss_a.backward()
    loss_b.backward()
    torch.testing.assert_close(ours.cells[1].weight_hh.grad, theirs.rnn.weight_hh_l1.grad, atol=1e-5, rtol=0)


def test_copy_recurrent_weights_round_trips():
    a = RecurrentLM(27, 16, 8, 12, "lstm", use_torch=True)
    b = RecurrentLM(27, 16, 8, 12, "lstm", use_torch=False)
    c = RecurrentLM(27, 16, 8, 12, "lstm", use_torch=True)
    copy_recurrent_weights(a, b)
    copy_recurrent_weights(b, c)
    for (name, p), q in zip(a.state_dict().items(), c.state_dict().values()):
        assert torch.equal(p, q), name


def test_left_align_reads_windows_from_their_start():
    windows = torch.tensor([[0, 0, 0, 5, 6], [0, 0, 0, 0, 0], [0, 1, 2, 3, 4], [7, 1, 2, 3, 4]])
    aligned, last = left_align(windows)
    assert aligned.tolist() == [[0, 5, 6, 0, 0], [0, 0, 0, 0, 0], [0, 1, 2, 3, 4], [7, 1, 2, 3, 4]]
    assert last.tolist() == [2, 0, 4, 4]


def test_name_sequences_pads_and_cuts():
    x, y = name_sequences([[5, 6], [1, 2, 3, 4, 5]], 4)
    assert x.tolist() == [[0, 5, 6, 0], [0, 1, 2, 3]]
    assert y.tolist() == [[5, 6, 0, -1], [1, 2, 3, 4]]


@pytest.mark.parametrize(
    "model",
    [
        lambda: RecurrentLM(27, 8, 8, 16, "gru"),
        lambda: Transformer(27, 8, 16, 2, 2),
    ],
)
def test_window_prediction_equals_the_per_position_one(model):
    """A right-aligned window's logits are the sequence model's logits at that window's last character."""
    torch.manual_seed(2)
    m = model().eval()
    x, _ = name_sequences([[3, 4, 5, 6]], 8)  # '.cdef'
    per_position = m.logits_all(x)[0]  # (T, V)
    for k in range(5):  # windows '.', '.c', '.cd', ...
        window = torch.tensor([[0] * (8 - k) + [3, 4, 5, 6][:k]])
        torch.testing.assert_close(m(window)[0][0], per_position[k], atol=1e-5, rtol=0)


def test_attention_rows_are_distributions_over_the_past():
    attn = makemore.CausalSelfAttention(16, 4)
    attn.keep_attention = True
    attn(torch.randn(2, 5, 16))
    att = attn.last_attention  # (B, nh, T, T)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, 5))
    assert torch.all(att.triu(1) == 0)


def test_weight_tying_shares_one_matrix():
    model = Transformer(27, 8, 16, 2, 1, tie_weights=True)
    assert model.lm_head.weight is model.wte.weight
    untied = Transformer(27, 8, 16, 2, 1)
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in model.parameters()) == 27 * 16


def test_wavenet_shapes_and_contract():
    model = WaveNet(27, 8, 10, 16)
    idx = torch.randint(27, (4, 8))
    assert [a.shape for a in model.activations(idx)] == [(4, 4, 16), (4, 2, 16), (4, 16)]
    logits, loss = model(idx, torch.randint(27, (4,)))
    assert logits.shape == (4, 27) and loss.ndim == 0
    assert sum(isinstance(m, SeqBatchNorm) for m in model.modules()) == 3
    assert sum(isinstance(m, FlattenConsecutive) for m in model.modules()) == 3
    with pytest.raises(ValueError):
        WaveNet(27, 6, 10, 16)


@pytest.mark.parametrize(
    "model",
    [
        lambda: WaveNet(27, 8, 10, 16),
        lambda: RecurrentLM(27, 8, 8, 16, "lstm"),
        lambda: Transformer(27, 8, 16, 2, 2),
    ],
)
def test_generate_works_and_is_reproducible(model):
    torch.manual_seed(0)
    m = model()
    first = generate(m, 8, 5, torch.Generator().manual_seed(7))
    assert first == generate(m, 8, 5, torch.Generator().manual_seed(7))
    assert all(0 not in name and len(name) <= 30 for name in first)


def test_name_rows_hold_whole_names_and_their_targets():
    X, Y = name_rows([[5, 13, 13, 1], [1, 22, 1], [3] * 15, [2]], block_size=16)
    assert X[0, :9].tolist() == [0, 5, 13, 13, 1, 0, 1, 22, 1]  # '.emma.ava'
    assert Y[0, :9].tolist() == [5, 13, 13, 1, 0, 1, 22, 1, 0]  # 'emma.ava.'
    assert (Y[0, 9:] == -1).all() and (X[0, 9:] == 0).all()  # padding the loss ignores
    assert X[1].tolist() == [0] + [3] * 15  # the 15-letter name did not fit row 0: a row of its own
    assert X[2, :2].tolist() == [0, 2]


def test_with_segments_a_name_reads_the_same_alone_or_after_another():
    """Attention stays inside each name and positions restart at '.': packing changes nothing."""
    torch.manual_seed(0)
    model = Transformer(27, 16, 32, 4, 2, segments=True).eval()
    row = torch.tensor([[0, 5, 13, 13, 1, 0, 1, 22, 1]])  # '.emma.ava'
    alone = torch.tensor([[0, 1, 22, 1]])  # '.ava'
    torch.testing.assert_close(model.logits_all(row)[:, 5:], model.logits_all(alone), atol=1e-5, rtol=0)
    plain = Transformer(27, 16, 32, 4, 2).eval()
    plain.load_state_dict(model.state_dict())
    assert not torch.allclose(plain.logits_all(row)[:, 5:], plain.logits_all(alone), atol=1e-3)
    torch.testing.assert_close(plain.logits_all(alone), model.logits_all(alone))  # one name: the same model

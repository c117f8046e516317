"""models/captioning.py: the soft attention against a loop, teacher forcing that ignores padding, the
transformer decoder's causal and padding masks, one beam step against brute force, and beam search
against greedy on a toy model where they differ."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from dlpractice.data.captions import BOS, EOS, IGNORE, PAD
from dlpractice.models.captioning import Captioner, beam_search, beam_step, caption_images, soft_attention


def test_soft_attention_equals_a_loop_over_cells() -> None:
    generator = torch.Generator().manual_seed(0)
    query, keys = torch.randn(3, 5, generator=generator), torch.randn(3, 7, 5, generator=generator)
    values = torch.randn(3, 7, 4, generator=generator)
    score = nn.Linear(5, 1)
    context, weights = soft_attention(query, keys, values, score)
    for b in range(3):
        e = torch.stack([score(torch.tanh(keys[b, g] + query[b]))[0] for g in range(7)])
        alpha = torch.exp(e) / torch.exp(e).sum()
        torch.testing.assert_close(weights[b], alpha)
        torch.testing.assert_close(context[b], (alpha[:, None] * values[b]).sum(0))


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_padding_changes_neither_the_loss_nor_the_real_positions(decoder: str) -> None:
    torch.manual_seed(0)
    model = Captioner(decoder, vocab=12, side=16, widths=(4, 4, 8), d_model=16, max_len=8).eval()
    images = torch.rand(2, 3, 16, 16)
    tokens = torch.tensor([[BOS, 5, 6, 7], [BOS, 8, 9, PAD]])
    targets = torch.tensor([[5, 6, 7, EOS], [8, 9, EOS, IGNORE]])
    longer = torch.cat([tokens, torch.full((2, 3), PAD)], 1)
    logits, loss = model(images, tokens, targets)
    logits2, loss2 = model(images, longer, torch.cat([targets, torch.full((2, 3), IGNORE)], 1))
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(logits, logits2[:, :4])
    by_hand = nn.functional.cross_entropy(
        torch.cat([logits[0], logits[1, :3]]), torch.tensor([5, 6, 7, EOS, 8, 9, EOS])
    )
    torch.testing.assert_close(loss, by_hand)


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_a_word_depends_on_earlier_words_only(decoder: str) -> None:
    torch.manual_seed(0)
    model = Captioner(decoder, vocab=12, side=16, widths=(4, 4, 8), d_model=16, max_len=8).eval()
    images = torch.rand(1, 3, 16, 16)
    a, b = torch.tensor([[BOS, 5, 6, 7]]), torch.tensor([[BOS, 5, 9, 10]])
    la, lb = model(images, a)[0], model(images, b)[0]
    torch.testing.assert_close(la[:, :2], lb[:, :2])
    assert not torch.allclose(la[:, 2:], lb[:, 2:])


def test_beam_step_picks_the_best_extensions_by_brute_force() -> None:
    generator = torch.Generator().manual_seed(1)
    b, k, v = 2, 3, 6
    scores = -torch.rand(b, k, generator=generator) * 3
    logp = torch.randn(b, k, v, generator=generator).log_softmax(-1)
    finished = torch.tensor([[False, True, False], [False, False, False]])
    new, parent, token = beam_step(scores, logp, finished)
    for i in range(b):
        options = []
        for beam, word in itertools.product(range(k), range(v)):
            if finished[i, beam]:
                options.append((float(scores[i, beam]) if word == PAD else float("-inf"), beam, word))
            else:
                options.append((float(scores[i, beam] + logp[i, beam, word]), beam, word))
        best = sorted(options, key=lambda o: -o[0])[:k]
        assert new[i].tolist() == pytest.approx([o[0] for o in best])
        assert list(zip(parent[i].tolist(), token[i].tolist())) == [(o[1], o[2]) for o in best]


class ToyModel(nn.Module):
    """A 'model' whose next-word distribution depends on the prefix only: greedy takes word 4 (p 0.5) and
    then must end with probability 0.3; beam search finds word 5 (p 0.4) then </s> (p 0.9)."""

    vocab = 7

    def __init__(self):
        super().__init__()
        self.encoder = lambda images: torch.zeros(len(images), 1, 1)

    def next_logits(self, grid: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        probs = torch.full((len(prefix), self.vocab), 1e-6)
        for row, seq in enumerate(prefix.tolist()):
            last = seq[-1]
            if len(seq) == 1:
                probs[row, [4, 5, EOS]] = torch.tensor([0.5, 0.4, 0.1])
            elif last == 4:
                probs[row, [EOS, 6]] = torch.tensor([0.3, 0.7 / 1e3])  # unsure how to go on
                probs[row, 4] = 0.7 - 0.7 / 1e3
            elif last == 5:
                probs[row, [EOS, 6]] = torch.tensor([0.9, 0.1])
            else:
                probs[row, EOS] = 1.0
        return probs.log()


def test_beam_search_beats_greedy_where_the_likeliest_first_word_leads_nowhere() -> None:
    model, images = ToyModel(), torch.zeros(2, 3, 4, 4)
    greedy = beam_search(model, images, beam=1, max_len=3, alpha=0.0)
    beam = beam_search(model, images, beam=3, max_len=3, alpha=0.0)
    assert greedy[0][:2] == [4, 4] and beam == [[5], [5]]


def test_length_normalisation_prefers_longer_captions() -> None:
    model, images = ToyModel(), torch.zeros(1, 3, 4, 4)
    # log p: [] = log 0.1 (length 1), [5] = log 0.36 (length 2); alpha 0 keeps [5], and a huge alpha
    # divides every score by length**alpha, so the longest (least likely) hypothesis wins
    assert beam_search(model, images, beam=3, max_len=3, alpha=0.0) == [[5]]
    assert len(beam_search(model, images, beam=3, max_len=3, alpha=8.0)[0]) >= 2


def test_caption_images_batches_and_never_writes_specials() -> None:
    torch.manual_seed(0)
    model = Captioner("transformer", vocab=12, side=16, widths=(4, 4, 8), d_model=16, max_len=6)
    out = caption_images(model, torch.rand(5, 3, 16, 16), beam=2, max_len=6, batch=2)
    assert len(out) == 5 and all(len(ids) <= 7 for ids in out)
    assert not {PAD, BOS, EOS} & {i for ids in out for i in ids}

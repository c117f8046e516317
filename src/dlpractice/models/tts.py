"""Text-to-speech models of lab s5: phoneme ids in, log-mel frames out; and Griffin-Lim, mel frames to audio.

FastSpeech (Ren et al., 2019), non-autoregressive: a phoneme encoder (feed-forward Transformer blocks:
self-attention and 1-d convolutions), a duration predictor trained on the true durations (log frames), the
length regulator that repeats each phoneme's vector for its duration, and a decoder of the same blocks over
the frames. Trained with the true durations; at synthesis the predicted ones.
Tacotron 2 (Shen et al., 2018), autoregressive: a conv + BiLSTM encoder, and a decoder that produces `r`
frames a step from the last frame it produced, attending over the phonemes with location-sensitive attention
(Chorowski et al., 2015: the energies also see the previous and the cumulative weights, so the focus moves
forward). A guided-attention loss (Tachibana et al., 2017) rewards near-diagonal alignments early.
Both: `mel, loss = model(ids, durations, mel)` for fit(); a shared conv postnet refines the frames.
Griffin-Lim (fast, with momentum; Perraudin et al., 2013) finds a phase for a magnitude spectrogram with
torch.stft/istft (it matches `librosa.griffinlim`); non-negative least squares undo the mel filterbank.
Simplified: small models, no energy/pitch predictors (FastSpeech 2), no neural vocoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.data.audio import mel_filterbank, stft
from dlpractice.nn.attention import MultiHeadAttention, sinusoidal_table

MAX_FRAMES = 4000  # position table size: 46 s of 11.6 ms frames


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool: True on the first lengths[b] positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the real frames: pred, target (B, T, M), mask (B, T)."""
    weights = mask[..., None].to(pred.dtype)
    return ((pred - target).abs() * weights).sum() / (weights.sum() * pred.shape[-1]).clamp_min(1)


def length_regulate(hidden: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat phoneme i's vector durations[i] times: hidden (B, N, D), durations (B, N) integer frames ->
    frames (B, T, D) with zeros after each utterance's end, T = the longest total, and lengths (B,)."""
    # BEGIN EXERCISE s5.1: each frame takes the vector of the phoneme it falls in; zeros past the end
    lengths = durations.sum(1)  # (B,)
    ends = durations.cumsum(1)  # (B, N): the frame after each phoneme's last
    frames = torch.arange(int(lengths.max()), device=hidden.device)  # (T,)
    index = (frames[None, :, None] >= ends[:, None, :]).sum(-1)  # (B, T): phonemes ended before frame t
    index = index.clamp(max=hidden.shape[1] - 1)
    out = hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[2]))  # (B, T, D)
    out = out * length_mask(lengths, len(frames))[..., None]
    # END EXERCISE
    return out, lengths


class FFTBlock(nn.Module):
    """FastSpeech's feed-forward Transformer block: self-attention, then two 1-d convolutions (post-norm)."""

    def __init__(self, d: int, heads: int, kernel: int, dropout: float):
        super().__init__()
        self.attention = MultiHeadAttention(d, heads, dropout)
        self.conv = nn.Sequential(
            nn.Conv1d(d, 2 * d, kernel, padding=kernel // 2), nn.ReLU(), nn.Conv1d(2 * d, d, 1)
        )
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) True on real positions."""
        keep = mask[..., None]  # padding is zeroed before each convolution, which would see it otherwise
        x = self.norm1(x + self.drop(self.attention(x, mask=mask[:, None, None, :]))) * keep
        x = self.norm2(x + self.drop(self.conv(x.transpose(1, 2)).transpose(1, 2)))
        return x * mask[..., None]


class DurationPredictor(nn.Module):
    """Two convolutions over the encoder's vectors -> log(1 + frames) per phoneme."""

    def __init__(self, d: int, kernel: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(d, d, kernel, padding=kernel // 2) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(2)])
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = self.drop(norm(F.relu(conv(x.transpose(1, 2)).transpose(1, 2))))
        return self.out(x).squeeze(-1) * mask  # (B, N)


class Postnet(nn.Module):
    """Convolutions over time that add a residual to the predicted frames (sharper harmonics)."""

    def __init__(self, n_mels: int, channels: int, layers: int, dropout: float):
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList([nn.Conv1d(a, b, 5, padding=2) for a, b in zip(sizes, sizes[1:])])
        self.drop = nn.Dropout(dropout)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """mel (B, T, M), mask (B, T) True on real frames: padding stays zero between the layers."""
        keep = mask[:, None, :].to(mel.dtype)
        x = mel.transpose(1, 2) * keep  # (B, M, T)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = self.drop(torch.tanh(x)) * keep if i < len(self.convs) - 1 else x
        return (mel + x.transpose(1, 2)) * keep.transpose(1, 2)


class FastSpeech(nn.Module):
    def __init__(
        self,
        vocab: int,
        n_mels: int,
        d: int = 128,
        heads: int = 2,
        layers: int = 2,
        dropout: float = 0.1,
        postnet: int = 64,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, d, padding_idx=0)
        self.register_buffer("positions", sinusoidal_table(MAX_FRAMES, d), persistent=False)
        self.encoder = nn.ModuleList([FFTBlock(d, heads, 3, dropout) for _ in range(layers)])
        self.durations = DurationPredictor(d, 3, dropout)
        self.decoder = nn.ModuleList([FFTBlock(d, heads, 3, dropout) for _ in range(layers)])
        self.to_mel = nn.Linear(d, n_mels)
        self.postnet = Postnet(n_mels, postnet, 3, dropout)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, N) -> phoneme vectors (B, N, D) and predicted log(1 + frames) (B, N)."""
        mask = ids != 0
        x = (self.embed(ids) + self.positions[: ids.shape[1]]) * mask[..., None]
        for block in self.encoder:
            x = block(x, mask)
        return x, self.durations(x, mask)

    def decode(self, x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Phoneme vectors and integer durations -> (mel before the postnet, after it), both (B, T, M)."""
        frames, lengths = length_regulate(x, durations)
        mask = length_mask(lengths, frames.shape[1])
        y = frames + self.positions[: frames.shape[1]] * mask[..., None]
        for block in self.decoder:
            y = block(y, mask)
        coarse = self.to_mel(y) * mask[..., None]
        return coarse, self.postnet(coarse, mask)

    def forward(
        self, ids: torch.Tensor, durations: torch.Tensor, mel: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids, durations (B, N), mel (B, T, M) -> predicted mel (B, T, M) with the true durations, loss."""
        x, log_durations = self.encode(ids)
        coarse, fine = self.decode(x, durations)
        if mel is None:
            return fine, None
        mask = length_mask(durations.sum(1), mel.shape[1])
        phonemes = (ids != 0).float()
        duration_loss = (
            ((log_durations - torch.log1p(durations.float())) ** 2) * phonemes
        ).sum() / phonemes.sum()
        return fine, masked_l1(coarse, mel, mask) + masked_l1(fine, mel, mask) + duration_loss

    @torch.no_grad()
    def synthesize(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N,) -> mel (T, M) with the predicted durations, and those durations (N,)."""
        x, log_durations = self.encode(ids[None])
        durations = torch.round(torch.expm1(log_durations)).clamp_min(0).long()  # (1, N)
        if durations.sum() == 0:  # an untrained predictor: one frame a phoneme, so there is a mel at all
            durations += 1
        return self.decode(x, durations)[1][0], durations[0]


class LocationSensitiveAttention(nn.Module):
    """e_j = vᵀ tanh(W q + V h_j + U f_j), f_j from a conv over the previous and cumulative weights."""

    def __init__(self, query_dim: int, memory_dim: int, dim: int = 128, filters: int = 32, kernel: int = 31):
        super().__init__()
        self.query = nn.Linear(query_dim, dim, bias=False)
        self.memory = nn.Linear(memory_dim, dim, bias=False)
        self.location_conv = nn.Conv1d(2, filters, kernel, padding=kernel // 2, bias=False)
        self.location = nn.Linear(filters, dim, bias=False)
        self.v = nn.Linear(dim, 1)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        past: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), keys = self.memory(memory) (B, N, A), memory (B, N, E), past (B, 2, N), mask (B, N)
        -> context (B, E), weights (B, N)."""
        location = self.location(self.location_conv(past).transpose(1, 2))  # (B, N, A)
        energies = self.v(torch.tanh(self.query(query)[:, None] + keys + location)).squeeze(-1)  # (B, N)
        weights = energies.masked_fill(~mask, float("-inf")).softmax(-1)
        return torch.bmm(weights[:, None], memory)[:, 0], weights


def guided_attention_loss(
    alignments: torch.Tensor, in_lengths: torch.Tensor, out_lengths: torch.Tensor, g: float = 0.2
) -> torch.Tensor:
    """Mean of A[t, n] * (1 - exp(-(n/N - t/T)^2 / 2g^2)) over real (t, n): weight far from the diagonal
    costs. alignments (B, steps, N); lengths in phonemes and decoder steps."""
    steps, n = alignments.shape[1:]
    t = torch.arange(steps, device=alignments.device)[None, :, None] / out_lengths[:, None, None]
    j = torch.arange(n, device=alignments.device)[None, None, :] / in_lengths[:, None, None]
    penalty = 1 - torch.exp(-((j - t) ** 2) / (2 * g * g))  # (B, steps, N)
    mask = length_mask(out_lengths, steps)[:, :, None] & length_mask(in_lengths, n)[:, None, :]
    return (alignments * penalty * mask).sum() / mask.sum()


class Tacotron(nn.Module):
    def __init__(
        self,
        vocab: int,
        n_mels: int,
        d: int = 128,
        rnn: int = 192,
        reduction: int = 4,
        dropout: float = 0.1,
        guided_weight: float = 1.0,
        postnet: int = 64,
    ):
        super().__init__()
        self.n_mels, self.r, self.rnn, self.guided_weight = n_mels, reduction, rnn, guided_weight
        self.embed = nn.Embedding(vocab, d, padding_idx=0)
        self.convs = nn.Sequential(
            *[
                m
                for _ in range(3)
                for m in (nn.Conv1d(d, d, 5, padding=2), nn.BatchNorm1d(d), nn.ReLU(), nn.Dropout(dropout))
            ]
        )
        self.lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True)
        self.prenet = nn.ModuleList([nn.Linear(n_mels, d), nn.Linear(d, d)])
        self.attention_rnn = nn.LSTMCell(2 * d, rnn)
        self.attention = LocationSensitiveAttention(rnn, d)
        self.decoder_rnn = nn.LSTMCell(rnn + d, rnn)
        self.to_frames = nn.Linear(rnn + d, n_mels * reduction)
        self.to_stop = nn.Linear(rnn + d, 1)
        self.postnet = Postnet(n_mels, postnet, 3, dropout)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, N) -> memory (B, N, D)."""
        x = self.convs(self.embed(ids).transpose(1, 2)).transpose(1, 2)
        lengths = (ids != 0).sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])[0]

    def pre(self, frame: torch.Tensor) -> torch.Tensor:
        """The prenet, with dropout on at synthesis too (Tacotron 2): it keeps the decoder from copying."""
        for layer in self.prenet:
            frame = F.dropout(F.relu(layer(frame)), 0.5, training=True)
        return frame

    def start(self, memory: torch.Tensor) -> dict[str, torch.Tensor]:
        b, n, d = memory.shape
        zeros = memory.new_zeros
        return {
            "att": (zeros(b, self.rnn), zeros(b, self.rnn)),
            "dec": (zeros(b, self.rnn), zeros(b, self.rnn)),
            "context": zeros(b, d),
            "weights": zeros(b, n),
            "cumulative": zeros(b, n),
        }

    def step(self, frame, state, memory, keys, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A decoder step from the last frame (B, M): r frames (B, r * M), stop logit (B,), weights (B, N)."""
        state["att"] = self.attention_rnn(torch.cat([self.pre(frame), state["context"]], -1), state["att"])
        past = torch.stack([state["weights"], state["cumulative"]], 1)  # (B, 2, N)
        context, weights = self.attention(state["att"][0], keys, memory, past, mask)
        state["context"], state["weights"], state["cumulative"] = (
            context,
            weights,
            state["cumulative"] + weights,
        )
        state["dec"] = self.decoder_rnn(torch.cat([state["att"][0], context], -1), state["dec"])
        out = torch.cat([state["dec"][0], context], -1)
        return self.to_frames(out), self.to_stop(out).squeeze(-1), weights

    def forward(
        self, ids: torch.Tensor, durations: torch.Tensor, mel: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced: each step sees the true last frame of the step before. ids, durations (B, N) (only
        their sums are used: the frame counts), mel (B, T, M) -> predicted mel (B, T, M), loss."""
        lengths = durations.sum(1)
        b, t, m = mel.shape
        steps = math.ceil(t / self.r)
        padded = F.pad(mel, (0, 0, 0, steps * self.r - t))  # (B, steps * r, M)
        inputs = torch.cat(
            [mel.new_zeros(b, 1, m), padded[:, self.r - 1 :: self.r][:, :-1]], 1
        )  # (B, steps, M)
        memory = self.encode(ids)
        keys, mask = self.attention.memory(memory), ids != 0
        state = self.start(memory)
        frames, stops, alignments = [], [], []
        for i in range(steps):
            out, stop, weights = self.step(inputs[:, i], state, memory, keys, mask)
            frames.append(out.view(b, self.r, m))
            stops.append(stop)
            alignments.append(weights)
        coarse = torch.cat(frames, 1)[:, :t]  # (B, T, M)
        frame_mask = length_mask(lengths, t)
        fine = self.postnet(coarse, frame_mask)
        self.alignments = torch.stack(alignments, 1).detach()  # (B, steps, N): for the figure
        out_steps = torch.div(lengths + self.r - 1, self.r, rounding_mode="floor")
        stop_target = (
            torch.arange(steps, device=mel.device)[None] >= out_steps[:, None] - 1
        ).float()  # (B, steps)
        loss = (
            masked_l1(coarse, mel, frame_mask)
            + masked_l1(fine, mel, frame_mask)
            + F.binary_cross_entropy_with_logits(torch.stack(stops, 1), stop_target)
            + self.guided_weight * guided_attention_loss(torch.stack(alignments, 1), mask.sum(1), out_steps)
        )
        return fine, loss

    @torch.no_grad()
    def synthesize(self, ids: torch.Tensor, max_steps: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N,) -> mel (T, M) fed back on itself until the stop logit turns positive, and the
        alignment (steps, N)."""
        memory = self.encode(ids[None])
        keys, mask = self.attention.memory(memory), ids[None] != 0
        state, frame = self.start(memory), memory.new_zeros(1, self.n_mels)
        frames, alignments = [], []
        for _ in range(max_steps):
            out, stop, weights = self.step(frame, state, memory, keys, mask)
            frames.append(out.view(self.r, self.n_mels))
            alignments.append(weights[0])
            frame = out.view(1, self.r, self.n_mels)[:, -1]
            if stop.item() > 0:
                break
        coarse = torch.cat(frames)[None]
        return self.postnet(coarse, torch.ones(coarse.shape[:2], dtype=torch.bool))[0], torch.stack(
            alignments
        )


def mel_to_magnitude(mel_db: torch.Tensor, sr: int, n_fft: int, iters: int = 50) -> torch.Tensor:
    """(n_mels, T) log-mel power in dB -> (n_fft // 2 + 1, T) STFT magnitude whose mel power is closest
    (least squares, non-negative): the filterbank's pseudo-inverse with negatives clipped, then projected
    gradient steps (what librosa.feature.inverse.mel_to_stft solves, by another method)."""
    filters = mel_filterbank(sr, n_fft, mel_db.shape[0]).to(mel_db.dtype)  # (n_mels, F)
    target = 10.0 ** (mel_db / 10.0)  # (n_mels, T) power
    power = (torch.linalg.pinv(filters) @ target).clamp_min(0)  # (F, T)
    step = 1.0 / torch.linalg.matrix_norm(filters, 2) ** 2  # 1 / the gradient's Lipschitz constant
    for _ in range(iters):
        power = (power - step * filters.T @ (filters @ power - target)).clamp_min(0)
    return power.sqrt()


def griffin_lim(
    magnitude: torch.Tensor, n_fft: int, hop: int, n_iter: int = 32, momentum: float = 0.99
) -> torch.Tensor:
    """A wave (hop * (T - 1),) whose STFT magnitude approaches `magnitude` (F, T): alternate between the
    spectrogram of a signal and the given magnitude with the current phase; start from zero phase."""
    window = torch.hann_window(n_fft, dtype=magnitude.dtype)

    def inverse(spec: torch.Tensor) -> torch.Tensor:
        return torch.istft(spec, n_fft, hop, window=window, center=True)

    eps = torch.finfo(magnitude.dtype).tiny
    angles = magnitude.to(torch.complex128 if magnitude.dtype == torch.float64 else torch.complex64)
    previous = None
    for _ in range(n_iter):
        # BEGIN EXERCISE s5.2: one fast Griffin-Lim step: rebuild, push past the last estimate, keep |S|
        rebuilt = stft(inverse(angles), n_fft, hop)  # (F, T) the spectrogram of the current signal
        angles = rebuilt if previous is None else rebuilt - (momentum / (1 + momentum)) * previous
        angles = magnitude * angles / (angles.abs() + eps)  # the given magnitude, the new phase
        previous = rebuilt
        # END EXERCISE
    return inverse(angles)

"""Grading is honest: every exercise's checks pass on the reference, fail on the stub `dlp practice`
writes, and fail on a plausible wrong answer (a mutation). Exercises come from the registry, so a new
one is covered as soon as it lands, and one without a check or a mutation fails a test naming it.

Each variant changes one region only, in a copy of its file; all variants of a kind are graded in one
pytest process through the same path `dlp check` uses ($DLP_PRACTICE_DIR and the `impl` parameter).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dlpractice.practice.checker import pytest_command
from dlpractice.practice.exercises import all_exercises, check_files
from dlpractice.practice.workspace import ENV_DIR, MANIFEST, indent_code, replace_region, stub_line

EXERCISES = {exercise.id: exercise for exercise in all_exercises()}

# A plausible mistake per exercise: the region's body as a learner might get it wrong.
MUTATIONS = {
    "l1.1": """
        counts = np.zeros((len(vocab), len(vocab)), dtype=np.int64)
        for word in words:
            ids = [0, *vocab.encode(word)]  # forgets the end-of-name boundary
            for prev, nxt in zip(ids, ids[1:]):
                counts[prev, nxt] += 1
    """,
    "l1.2": """
        smoothed = counts + smoothing
        return smoothed / smoothed.sum(axis=0, keepdims=True)  # normalises columns, not rows
    """,
    "l2.1": """
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        n = len(targets)
        loss = -np.log(probs[np.arange(n), targets]).mean()
        dlogits = probs.copy()
        dlogits[np.arange(n), targets] -= 1  # forgets the 1/B of the mean
    """,
    "l2.2": """
        n = len(dout)
        dxhat = dout * gamma
        return inv_std / n * (n * dxhat - dxhat.sum(0))  # drops the path through the variance
    """,
    "n2.1": """
        for i in range(0, len(ids) - 1, 2):  # counts non-overlapping pairs only
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + weight
    """,
    "n2.2": """
        merged = []
        i = 0
        while i < len(ids):
            if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
                merged.append(new_id)
            else:
                merged.append(ids[i])
            i += 1  # does not skip the second half of a merged pair
        return merged
    """,
    "n2.3": """
        pieces = []
        start = 0
        while start < len(word):  # greedy longest match: not the most likely segmentation
            for end in range(min(len(word), start + max_piece_len), start, -1):
                piece = word[start:end]
                if piece in logp or end - start == 1:
                    pieces.append(piece)
                    start = end
                    break
        return pieces
    """,
    "n2.4": """
        start = 0
        while start < len(word):
            for end in range(start + 1, len(word) + 1):  # shortest match first
                piece = word[start:end] if start == 0 else PREFIX + word[start:end]
                if piece in self.vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return [self.unk_token]
    """,
    "f1.1": """
        self.grad = 1.0
        for node in topological_order(self):  # inputs before outputs: gradients not yet complete
            node._backward()
    """,
    "f1.2": """
        if self.requires_grad:
            self._accumulate(unbroadcast(grad @ np.swapaxes(other.data, -1, -2), self.shape))
        if other.requires_grad:  # forgets to sum over the broadcast batch axes
            other._accumulate(np.swapaxes(self.data, -1, -2) @ grad)
    """,
    "f1.3": """
        d_logits = np.exp(log_probs)
        d_logits[np.arange(n), targets] -= 1
        logits._accumulate(d_logits * grad)  # forgets the 1/N of the mean
    """,
    "f1.4": """
        diff = prediction - target  # (N, 1) - (N,) broadcasts to (N, N)
        return (diff * diff).mean()
    """,
    "f1.5": """
        loss = loss_fn(model(Tensor(x[index])), y[index])
        loss.backward()  # never zeroes the gradients: each step adds to the last one's
        optimizer.step()
    """,
    "f2.1": """
        model = torch.nn.Sequential(
            torch.nn.Linear(data.x_train.shape[1], cfg.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(cfg.hidden, len(weights[-1])),
        ).double()
        with torch.no_grad():
            for p, w in zip(model.parameters(), weights, strict=True):
                p.copy_(torch.from_numpy(w))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)  # AdamW: weight decay 0.01 by default
        x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        losses = []
        for index in batches:
            out = model(x[index])
            if task == "digits":
                loss = torch.nn.functional.cross_entropy(out, y[index])
            else:
                loss = torch.nn.functional.mse_loss(out[:, 0], y[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    """,
    "f3.1": """
        return x / (1 + torch.exp(x))  # sign error: sigmoid is 1 / (1 + exp(-x))
    """,
    "f3.2": """
        dead, total = 0, 0
        with torch.no_grad():
            h = x
            for block in model.blocks:
                linear, activation = block[0], block[-1]
                z = linear(h)
                slope = derivative(activation, z).abs()
                dead += int((slope < threshold).any(dim=0).sum())  # off on some rows, not on all
                total += z.shape[1]
                h = activation(z)
        return dead / total
    """,
    "f4.1": """
        r = (pred - target).abs()
        return torch.where(r <= delta, 0.5 * r**2, delta * (r - delta)).mean()  # tails off by delta / 2
    """,
    "f4.2": """
        bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
        p_t = torch.sigmoid(logit)  # P(class 1), not P(true class)
        return ((1 - p_t) ** gamma * bce).mean()
    """,
    "f5.2": """
        if step < warmup:
            return base_lr * step / warmup  # off by one: starts at 0, peaks a step late
        return optim.cosine_lr(step - warmup, base_lr, total - warmup)
    """,
    "f6.1": """
        dy, dx = torch.randint(-1, 2, (2, len(x)), generator=generator)
        images = x.reshape(-1, 8, 8)
        out = torch.stack([img.roll((int(i), int(j)), dims=(0, 1)) for img, i, j in zip(images, dy, dx)])
        return out.reshape(len(x), 64)  # roll wraps the edge pixels around
    """,
    "p1.1": """
        spread = float(np.std(seed_losses, ddof=1))
        gain = abs(default - best)  # a search that made things worse counts as a gain
        return gain, gain > sigmas * spread
    """,
    "n9.1": """
        n_old = round(self.replay * batch_size)
        x, y = self.new.windows("train", batch_size, generator)  # a full batch of new rows, then more
        if n_old == 0:
            return x, y
        old_x, old_y = self.old.windows("train", n_old, generator)
        return torch.cat([x, old_x]), torch.cat([y, old_y])
    """,
    "n10.1": """
        ids = prompt + response
        inputs, targets = ids[:-1], ids[1:]
        if mask_prompt:
            targets = [IGNORE] * len(prompt) + targets[len(prompt) :]  # masks the response's first token too
        return inputs, targets
    """,
    "n10.2": """
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T)  # forgets the alpha / rank scaling
    """,
    "v1.1": """
        return (size + 2 * padding - kernel) // stride + 1  # ignores the dilation
    """,
    "v1.2": """
        k = weight.shape[-1]
        x = F.pad(x, (padding, padding, padding, padding))
        ho = conv_output_size(x.shape[2], k, stride)
        wo = conv_output_size(x.shape[3], k, stride)
        out = x.new_zeros(x.shape[0], weight.shape[0], ho, wo)
        for i in range(k):
            for j in range(k):
                window = x[:, :, i : i + ho, j : j + wo]  # forgets the stride
                out += torch.einsum("bchw,oc->bohw", window, weight[:, :, i, j])
        if bias is not None:
            out += bias[None, :, None, None]
        return out
    """,
    "v1.3": """
        b, c, h, w = x.shape
        grid = x.reshape(b, c, h // patch, patch, w // patch, patch)
        patches = grid.permute(0, 2, 4, 3, 5, 1)  # channel last: not a Conv2d weight's order
        return patches.reshape(b, (h // patch) * (w // patch), c * patch * patch)
    """,
    "n11.1": """
        fused: dict[int, float] = {}
        for ranking in rankings:
            for rank, item in enumerate(ranking):  # rank counted from 0, not 1
                fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
        return sorted(fused, key=lambda item: (-fused[item], item))
    """,
    "s1.1": """
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    edges_hz = np.linspace(fmin, fmax, n_mels + 2)  # evenly spaced in Hz, not in mel
    widths = np.diff(edges_hz)
    offsets = edges_hz[:, None] - bin_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    """,
    "s2.1": """
        mean = h.mean(-1)  # every frame, padding included
        return torch.cat([mean, (h.var(-1, unbiased=False) + 1e-5).sqrt()], dim=1)
    """,
    "s6.1": """
        kernel = np.ones(width) / width
        return np.convolve(posteriors, kernel)[: len(posteriors)]  # divides by width at the start too
    """,
    "v2.1": """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return out + self.shortcut(x)  # no ReLU after the addition
    """,
    "v2.2": """
        return nn.Sequential(
            nn.Conv2d(c_in, c_in, 3, stride, padding=1, bias=False),  # forgets groups=c_in: a full 3x3 conv
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )
    """,
    "v2.3": """
        batch, c_out, h_out, w_out = output_shape
        kh, kw = conv.kernel_size
        return 2 * batch * c_out * h_out * w_out * conv.in_channels * kh * kw  # ignores groups
    """,
    "v3.1": """
        backbone, head = list(model.features.parameters()), list(model.head.parameters())
        if method == "probe":
            return [{"params": head, "lr": lr}]  # not frozen: backward still computes the backbone gradients
        if method == "lower_lr":
            return [{"params": backbone, "lr": lr * backbone_lr_ratio}, {"params": head, "lr": lr}]
        return [{"params": backbone + head, "lr": lr}]
    """,
    "v4.1": """
        (grads,) = torch.autograd.grad(scores.sum(), maps)
        cam = F.relu((grads * maps).sum(1, keepdim=True))  # each position's own gradient, not the map's mean
        return F.interpolate(cam, size=x.shape[2:], mode="bilinear")
    """,
    "v6.1": """
        tp = np.diag(confusion).astype(np.float64)
        fp = confusion.sum(0) - tp
        fn = confusion.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return 2 * tp / (2 * tp + fp + fn + 1e-12)  # absent classes score 0 instead of NaN
    """,
    "s4.1": """
    best = log_probs.argmax(-1).tolist()
    return [s for s in best if s != blank]  # drops blanks but never merges repeats
    """,
    "s4.2": """
    n, m = len(reference), len(hypothesis)
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            substitute = table[i - 1][j - 1] + 1  # counts a match as a substitution
            table[i][j] = min(substitute, table[i - 1][j] + 1, table[i][j - 1] + 1)
    return table
    """,
    "n12.1": """
        if line.startswith("ANSWER: "):
            episode.answer = line.removeprefix("ANSWER: ").strip()
            return None
        call = line.removeprefix("CALL: ")
        result = tools.run(call)  # a bad call raises: one malformed line ends the whole agent
        episode.calls.append(call)
        episode.results.append(result)
        return f"RESULT: {result}"
    """,
    "p2.1": """
        return float(np.percentile(values, q))  # interpolates between two latencies: one nobody measured
    """,
    "f8.1": """
        config = {}
        for name, (low, high, scale) in SPACE.items():
            if scale == "int":
                config[name] = int(rng.integers(low, high + 1))
            elif scale == "log_int":
                config[name] = int(round(rng.uniform(low, high)))  # uniform in the value, not its log
            else:
                config[name] = float(rng.uniform(low, high))  # small learning rates almost never tried
        return config
    """,
    "f7.1": """
        lengths = torch.tensor([len(seq) for seq, _ in batch])
        padded = torch.zeros(len(batch), int(lengths.max()))
        for row, (seq, _) in enumerate(batch):
            padded[row, -len(seq) :] = seq  # pads on the left
        labels = torch.tensor([label for _, label in batch])
        return padded, lengths, labels
    """,
    "f7.2": """
        model.train()
        total, count = 0.0, 0
        for x, y in loader:
            _, loss = model(x, y)
            loss.backward()
            optimizer.zero_grad()  # clears the gradients before the step uses them
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        return total / count
    """,
    "f5.1": """
        m, v = self.m[i], self.v[i]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if self.amsgrad:
            np.maximum(self.v_max[i], v, out=self.v_max[i])
            v = self.v_max[i]
        p.data -= self.lr * m / (np.sqrt(v) + self.eps)  # no bias correction
    """,
    "l3.1": """
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        return x  # forgets to squeeze a length-1 time axis
    """,
    "l3.2": """
        dims = (0,)  # statistics over the batch only, even for (B, T, C)
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        with torch.no_grad():
            n = x.numel() // x.shape[-1]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * n / max(1, n - 1), self.momentum)
    """,
    "l4.1": """
        h = torch.tanh(x @ self.weight_ih.T + self.bias_ih + state @ self.weight_hh)  # W_hh not transposed
    """,
    "l5.1": """
        z = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = z.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * c  # forgets the tanh on the cell
    """,
    "l6.1": """
        r_x, z_x, n_x = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        r_h, z_h, n_h = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(r_x + r_h)
        z = torch.sigmoid(z_x + z_h)
        n = torch.tanh(n_x + r * n_h)
        h = z * n + (1 - z) * h  # the blend the wrong way round
    """,
    "l7.1": """
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        att = q @ k.transpose(-2, -1) / math.sqrt(hs)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(0)  # off by one: masks itself
        att = F.softmax(att.masked_fill(future, -1e9), dim=-1)
        y = self.drop(att) @ v
        y = y.transpose(1, 2).reshape(B, T, C)
    """,
    "l8.1": """
        logits = logits.float() * temperature  # multiplies: a low temperature flattens instead of sharpening
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = F.softmax(logits, dim=-1)
        return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)
    """,
    "l9.1": """
        v = self.centre(centre)  # (B, D)
        u = self.context(torch.cat([context[:, None], noise], dim=1))  # (B, 1 + K, D)
        scores = (u @ v[:, :, None]).squeeze(-1)  # (B, 1 + K)
        noise_terms = F.logsigmoid(-scores[:, 1:]).mean(dim=1)  # averages the K noise terms, not their sum
        loss = -(F.logsigmoid(scores[:, 0]) + noise_terms).mean()
    """,
    "l9.2": """
        weight = (counts / self.x_max).pow(self.alpha)  # forgets the cap at 1: frequent pairs dominate
        loss = (weight * (predicted - counts.log()) ** 2).mean()
    """,
    "l9.3": """
        target = vectors[b] - vectors[a] + vectors[c]  # forgets to normalise: long vectors win
        scores = target @ vectors.T
        rows = torch.arange(len(a))
        for words in (a, b, c):
            scores[rows, words] = -torch.inf
        return scores.topk(k, dim=1).indices
    """,
    "n5.1": """
        if self.cell_kind == "lstm":
            h, c = self.cell(torch.cat([x, feed], -1), (h, c))
        else:
            h = self.cell(torch.cat([x, feed], -1), h)
        context = self.attend(h, memory, mask)  # Bahdanau too attends with the new state
        if self.attention == "bahdanau":
            feed = context
            logits = self.out(torch.cat([h, feed, x], -1))
        else:
            feed = torch.tanh(self.w_combine(torch.cat([context, h], -1)))
            logits = self.out(feed)
    """,
    "n7.1": """
        alpha = self.start + emissions[:, 0]
        for t in range(1, emissions.size(1)):  # ignores the mask: padding steps are summed in too
            alpha = torch.logsumexp(alpha[:, :, None] + self.transitions + emissions[:, t, None, :], dim=1)
        return torch.logsumexp(alpha + self.end, dim=1)
    """,
    "n7.2": """
        score = self.start + emissions[:, 0]
        pointers = []
        for t in range(1, emissions.size(1)):
            best, previous = (score[:, :, None] + self.transitions + emissions[:, t, None, :]).max(dim=1)
            score = torch.where(mask[:, t, None], best, score)
            pointers.append(previous)
        paths = []  # forgets the end scores before picking the last tag
        for b, length in enumerate(mask.sum(1).tolist()):
            tag = int(score[b].argmax())
            path = [tag]
            for previous in reversed(pointers[: length - 1]):
                tag = int(previous[b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths
    """,
    "n7.3": """
        return [IGNORE if word is None else word_labels[word] for word in word_ids]  # labels every piece
    """,
    "n8.1": """
        starts = sorted(range(len(offsets)), key=lambda i: start_logits[i], reverse=True)[:n_best]
        ends = sorted(range(len(offsets)), key=lambda i: end_logits[i], reverse=True)[:n_best]
        spans = [
            (start_logits[s] + end_logits[e], offsets[s][0], offsets[e][1])
            for s in starts
            for e in ends
            if offsets[s] is not None and offsets[e] is not None and abs(e - s) < max_answer_tokens
        ]  # allows an end before the start
        return sorted(spans, reverse=True)[:n_best]
    """,
    "n8.2": """
        predicted, true = prediction.lower().split(), truth.lower().split()  # no normalisation
        shared = sum((Counter(predicted) & Counter(true)).values())
        if shared == 0:
            return 0.0
        precision, recall = shared / len(predicted), shared / len(true)
        return 2 * precision * recall / (precision + recall)
    """,
    "n3.1": """
        scores = q @ k.transpose(-2, -1)  # forgets the 1/sqrt(d) scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(dim=-1)
        if dropout_p > 0:
            weights = F.dropout(weights, dropout_p)
        out = weights @ v
    """,
    "n3.2": """
        mask = torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril()  # ignores t_k > t_q
    """,
    "n3.3": """
        real = torch.arange(max_len, device=lengths.device)[None, :] <= lengths[:, None]  # off by one
        mask = real[:, None, None, :]
    """,
    "n6.1": """
        return features.amax(-1)  # windows of padding only compete too
    """,
    "n6.2": """
        weights = scores.softmax(-1)  # padding gets attention too
        pooled = (weights[:, None, :] @ states).squeeze(1)
    """,
    "n6.3": """
        confidence = probs[:, 1]  # P(class 1), not the confidence of the prediction made
        correct = probs.argmax(1) == labels
        bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
        counts = np.bincount(bins, minlength=n_bins)
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / np.maximum(counts, 1)
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / np.maximum(counts, 1)
    """,
    "v8.1": """
    a, b = shave(output.astype(np.float64), border), shave(target.astype(np.float64), border)
    mse = np.mean((a - b) ** 2)  # over the three RGB channels, not luma
    return float(10 * np.log10(255.0**2 / mse))
    """,
    "v8.2": """
    x = x.reshape(b, c // scale**2, scale, scale, h, w)  # (B, C, i, j, H, W)
    x = x.permute(0, 1, 4, 3, 5, 2)  # i and j swapped: each block is transposed
    return x.reshape(b, c // scale**2, h * scale, w * scale)
    """,
    "s3.1": """
        weights = attention.softmax(dim=1)  # over channels, not over time
        mean = (weights * h).sum(-1)
        variance = (weights * h.pow(2)).sum(-1) - mean.pow(2)
        return torch.cat([mean, (variance.clamp_min(0) + 1e-5).sqrt()], dim=1)
    """,
    "s3.2": """
        rows, columns = linear_sum_assignment(overlap)  # minimises the shared time
        return [(int(r), int(h)) for r, h in zip(rows, columns) if overlap[r, h] > 0]
    """,
    "s5.1": """
    lengths = durations.sum(1)
    ends = durations.cumsum(1)
    frames = torch.arange(int(lengths.max()), device=hidden.device)
    index = (frames[None, :, None] > ends[:, None, :]).sum(-1)  # > for >=: every boundary a frame late
    index = index.clamp(max=hidden.shape[1] - 1)
    out = hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[2]))
    out = out * length_mask(lengths, len(frames))[..., None]
    """,
    "s5.2": """
        rebuilt = stft(inverse(angles), n_fft, hop)
        angles = magnitude * rebuilt / (rebuilt.abs() + eps)  # plain Griffin-Lim: no momentum term
        previous = rebuilt
    """,
    "v7.1": """
    b, c, h, w = left.shape
    volume = left.new_zeros(b, groups, max_disparity, h, w)
    for d in range(max_disparity):
        product = left[..., : w - d] * right[..., d:]  # pairs left x with right x + d: the wrong way
        volume[:, :, d, :, : w - d] = product.view(b, groups, c // groups, h, w - d).mean(2)
    return volume
    """,
    "v7.2": """
    d = log_pred - log_true
    return (d**2).mean() - lam * d.mean() ** 2  # one mean over the whole batch, not per image
    """,
    "v5.1": """
        top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
        bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
        sides = bottom_right - top_left  # boxes apart: two negative sides make a positive area
        inter = sides[..., 0] * sides[..., 1]
        union = box_area(a)[:, None] + box_area(b)[None, :] - inter
        return inter / union
    """,
    "v5.2": """
        order = torch.argsort(scores, descending=True, stable=True)
        overlaps = box_iou(boxes[order], boxes[order])
        keep = []
        for i in range(len(order)):
            if all(overlaps[i, j] <= iou_threshold for j in range(i)):  # every better box, kept or not
                keep.append(int(order[i]))
        return torch.tensor(keep, dtype=torch.long)
    """,
    "v5.3": """
        first = np.searchsorted(recall, RECALL_LEVELS, side="left")
        readings = np.zeros(len(RECALL_LEVELS))
        reached = first < len(precision)
        readings[reached] = np.asarray(precision)[first[reached]]  # raw precision: no envelope from the right
        return float(readings.mean())
    """,
    "v10.1": """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature  # each view's score with itself left in
    b = len(z1)
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return F.cross_entropy(logits, partner)
    """,
    "v10.2": """
    similarity = test_f @ train_f.T  # dot products, not cosines: long training features win
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(test_f), int(train_y.max()) + 1), np.int64)
    np.add.at(votes, (np.arange(len(test_f))[:, None], train_y[nearest]), 1)
    return votes.argmax(1)
    """,
    "p3.1": """
    masks = []
    for w in weights:  # per layer, not global
        magnitudes = w.detach().abs().flatten()
        n_pruned = round(sparsity * magnitudes.numel())
        keep = torch.ones_like(magnitudes)
        if n_pruned > 0:
            keep[torch.topk(magnitudes, n_pruned, largest=False).indices] = 0
        masks.append(keep.view_as(w))
    return masks
    """,
    "p3.2": """
    lo, hi = float(x.min()), float(x.max())  # the range need not contain 0
    scale = max((hi - lo) / (qmax - qmin), torch.finfo(torch.float32).eps)
    zero_point = int(min(max(qmin - round(lo / scale), qmin), qmax))
    q = torch.clamp(torch.round(x * (1 / scale)) + zero_point, qmin, qmax).long()
    return AffineQuantised(q, scale, zero_point)
    """,
    "p3.3": """
    t = temperature
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / t, dim=1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean()
    return alpha * kl + (1 - alpha) * F.cross_entropy(student_logits, targets)  # forgets the T² factor
    """,
    "p5.1": """
        attention = linear_params(d, 3 * d, bias) + linear_params(d, d, bias)
        mlp = linear_params(d, 4 * d, bias) + linear_params(4 * d, d, bias)
        return attention + mlp  # forgets the two LayerNorms
    """,
    "p5.2": """
        if isinstance(layer, nn.Linear):
            rows = torch.Size(input_shape[:-1]).numel()
            return 2 * rows * layer.in_features * layer.out_features
        batch, _, height, width = input_shape  # the input's size, not the output's
        kh, kw = layer.kernel_size
        return 2 * batch * layer.out_channels * height * width * layer.in_channels // layer.groups * kh * kw
    """,
    "p5.3": """
        weights = n_params * bytes_per_value
        return {"weights": weights, "grads": weights, "optimiser": 0 if optimiser == "sgd" else weights}
    """,
    "p4.1": """
    bucket = torch.cat([g.reshape(-1) for g in grads])
    all_reduce(bucket)  # the sum over processes, never divided by world_size
    offset = 0
    for g in grads:
        g.copy_(bucket[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
    """,
    "p4.2": """
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    else:
        order = list(range(n))
    per_rank = math.ceil(n / world_size)
    order = (order * math.ceil(per_rank * world_size / n))[: per_rank * world_size]
    return order[rank * per_rank : (rank + 1) * per_rank]  # contiguous blocks, not every world_size-th
    """,
    "p4.3": """
    if rank > 0:
        x = wire.recv(in_shape, rank - 1)  # a leaf without a gradient: nothing to send back
    out = stage(x)
    if rank < world_size - 1:
        wire.send(out.detach(), rank + 1)
    return x, out
    """,
    "v9.1": """
    z = mu + torch.exp(logvar) * noise  # the variance where the standard deviation belongs
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
    return z, kl
    """,
    "v9.2": """
    alpha_bar = alpha_bars[t].view(-1, 1, 1, 1).to(x0.dtype)
    return alpha_bar * x0 + (1 - alpha_bar) * noise  # forgets the square roots
    """,
    "v9.3": """
    alpha_bar, beta = alpha_bars[t], betas[t]
    x0 = ((x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()).clamp(-1, 1)
    if t == 0:
        return x0
    prev = alpha_bars[t - 1]
    mean = (prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - prev) * x_t) / (1 - alpha_bar)
    return mean + beta.sqrt() * noise  # the forward step's std, not the posterior's
    """,
    "r2.1": """
    returns = torch.zeros_like(rewards)
    future = last_value
    for t in reversed(range(len(rewards))):
        future = rewards[t] + gamma * future  # runs on across episode ends
        returns[t] = future
    return returns
    """,
    "r2.2": """
    advantages = torch.zeros_like(rewards)
    next_value, running = last_value, 0.0
    for t in reversed(range(len(rewards))):
        alive = 1.0 - episode_ends[t]
        delta = rewards[t] + gamma * alive * next_value - values[t]
        running = delta + gamma * alive * running  # forgets lambda
        advantages[t] = running
        next_value = values[t]
    return advantages
    """,
    "r2.3": """
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -torch.max(ratio * advantages, clipped * advantages).mean()  # the optimistic maximum
    """,
    "p6.1": """
    for i in range(n_features):
        without = codes[(codes >> i) & 1 == 0]  # the coalitions S that lack feature i
        s = sizes[without]
        weights = np.array([factorial(k) * factorial(n_features - k) for k in s]) / factorial(n_features)
        phi[i] = np.sum(weights * (values[without | (1 << i)] - values[without]))
    """,
    "p6.2": """
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps  # (S,)
    path = baseline + alphas[:, None, None] * (x - baseline)  # (S, B, F)
    path = path.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(forward(path.reshape(-1, x.shape[1])).sum(), path)
    return x * grads.mean(0)  # scales by x, not by x - baseline
    """,
    "p6.3": """
    rates = group_rates(y_true, y_pred, group).values()

    def gap(name: str) -> float:
        values = [r[name] for r in rates]
        return max(values) - min(values)

    return gap("selection_rate"), gap("tpr")  # equal opportunity only: forgets the FPR gap
    """,
    "r1.1": """
    origins = np.arange(max(start, lookback), stop - horizon + 1)  # (N,)
    inputs = series[origins[:, None] + np.arange(-lookback + 1, 1)]  # the window ends ON the origin
    targets = series[origins[:, None] + np.arange(horizon)]  # (N, horizon)
    return inputs, targets
    """,
    "r1.2": """
    scale = np.mean(np.abs(np.diff(y_train)))  # the one-step naive error, not the seasonal one
    return float(np.mean(np.abs(y_true - y_pred)) / scale)
    """,
    "r1.3": """
    past = np.lib.stride_tricks.sliding_window_view(residuals, window)[1:]  # windows that end AT t
    z = (residuals[window:] - past.mean(axis=1)) / (past.std(axis=1) + 1e-8)
    return np.concatenate([np.zeros(window), np.abs(z)])
    """,
    "r3.1": """
    n_classes = int(support_y.max()) + 1
    one_hot = F.one_hot(support_y, n_classes).to(support.dtype)  # (S, N)
    prototypes = one_hot.T @ support / one_hot.sum(0)[:, None]  # (N, D)
    logits = -torch.cdist(query, prototypes)  # the distance, not its square
    return logits, F.cross_entropy(logits, query_y)
    """,
    "r3.2": """
    # every client alike, whatever its size
    return {name: sum(state[name] for state in states) / len(states) for name in states[0]}
    """,
    "r3.3": """
    alpha = 1.0 - torch.exp(-sigma * deltas)  # (R, S)
    transmittance = torch.cumprod(1.0 - alpha + 1e-10, -1)  # includes sample i itself
    return transmittance * alpha
    """,
    "r4.1": """
    words = [w for reply in replies for w in reply]  # one stream: n-grams run from one reply into the next
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
    """,
    "r4.2": """
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = ordered.softmax(-1)
        # drops the token that crosses top_p
        ordered = ordered.masked_fill(probs.cumsum(-1) > top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    return logits
    """,
    "r4.3": """
    total = (scores.view(-1, 1) + logp).view(b, k * v)  # (B, k·V): every beam's every next token
    top, index = total.topk(min(2 * k, k * v), dim=-1)  # 2k: at least k left once the ended leave
    parent, token = index // v, index % v  # (B, 2k)
    ranked = torch.arange(top.size(1), device=src.device) < k
    finishing = (token == EOS) & ranked
    value, j = top.masked_fill(~finishing, float("-inf")).max(-1)  # ranked by the raw sum: no normalisation
    better = value > best_score
    for i in better.nonzero().flatten().tolist():
        best[i] = seqs[i * k + parent[i, j[i]]].tolist() + [EOS]
    best_score = torch.where(better, value, best_score)
    scores, keep = top.masked_fill(token == EOS, float("-inf")).topk(k, dim=-1)  # (B, k)
    chosen = (rows[:, None] * k + parent.gather(1, keep)).flatten()  # (B·k,)
    seqs = torch.cat([seqs[chosen], token.gather(1, keep).flatten()[:, None]], 1)
    """,
    "v11.1": """
    matched, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda length: (abs(length - len(hyp)), length))
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            most = Counter()
            for ref in refs:
                most += ngrams(ref, n)  # adds the references' counts: clips too leniently
            matched[n - 1] += sum((counts & most).values())
            total[n - 1] += sum(counts.values())
    if hyp_len == 0:
        return [0.0] * max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    scores, log_sum = [], 0.0
    for n in range(max_n):
        if matched[n] == 0:
            scores += [0.0] * (max_n - n)
            break
        log_sum += math.log(matched[n] / total[n])
        scores.append(brevity * math.exp(log_sum / (n + 1)))
    """,
    "v11.2": """
    b, k, v = logp.shape
    pad_only = torch.full_like(logp, float("-inf"))
    pad_only[..., PAD] = 0.0
    logp = torch.where(finished[..., None], pad_only, logp)
    total = (scores[..., None] + logp).view(b, k * v)
    new_scores, index = total.topk(k, dim=-1)
    parent, token = index % k, index // k  # divides by the beam count, not the vocabulary size
    """,
    "v11.3": """
    scores = score(torch.tanh(keys + query[:, None, :])).squeeze(-1)  # (B, G)
    weights = scores.softmax(dim=0)  # softmax over the batch, not the grid
    context = (weights[..., None] * values).sum(dim=1)  # (B, C)
    """,
}


def variant_workspace(root: Path, kind: str) -> Path:
    """One copy of each exercise's file with only that exercise's region changed ('reference': none)."""
    entries = {}
    for exercise in EXERCISES.values():
        source = exercise.path.read_text(encoding="utf-8")
        if kind == "stub":
            source = replace_region(source, exercise, [stub_line(exercise)])
        elif kind == "mutation" and exercise.id in MUTATIONS:
            source = replace_region(source, exercise, indent_code(MUTATIONS[exercise.id], exercise.indent))
        name = f"{exercise.id.replace('.', '_')}/{exercise.path.name}"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source, encoding="utf-8")
        entries[exercise.id] = {"file": name, "module": exercise.module}
    (root / MANIFEST).write_text(json.dumps({"lab": "proof", "exercises": entries}))
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    """kind -> exercise id -> its checks' outcomes; the three kinds are graded side by side."""
    files = sorted({path for paths in check_files().values() for path in paths})
    running = {}
    for kind in ("reference", "stub", "mutation"):
        root = variant_workspace(tmp_path_factory.mktemp(kind), kind)
        command = pytest_command(files, "all", root / "report.json", first_failure=kind != "reference")
        env = {**os.environ, ENV_DIR: str(root)}
        running[kind] = (
            root,
            subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    results = {}
    for kind, (root, process) in running.items():
        output, _ = process.communicate(timeout=300)
        report = json.loads((root / "report.json").read_text())
        assert not report["errors"], f"{kind}: {report['errors']}\n{output[-3000:]}"
        by_exercise: dict[str, list[dict]] = {}
        for check in report["checks"].values():
            by_exercise.setdefault(check["exercise"], []).append(check)
        results[kind] = by_exercise
    return results


def test_every_exercise_has_a_check() -> None:
    missing = sorted(set(EXERCISES) - set(check_files()))
    assert not missing, f"exercises without a @pytest.mark.exercise check: {missing}"


def test_every_check_names_an_exercise_that_exists() -> None:
    unknown = sorted(set(check_files()) - set(EXERCISES))
    assert not unknown, f"checks marked with exercise ids no region defines: {unknown}"


def test_every_exercise_has_a_mutation() -> None:
    missing = sorted(set(EXERCISES) - set(MUTATIONS))
    assert not missing, f"exercises without a mutation in tests/practice/test_honesty.py: {missing}"
    assert not set(MUTATIONS) - set(EXERCISES), "mutations of exercises that no longer exist"


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_checks_pass_on_the_reference(graded, exercise_id: str) -> None:
    checks = graded["reference"].get(exercise_id, [])
    assert checks, f"no check ran for {exercise_id}"
    assert all(c["outcome"] == "passed" for c in checks), [c["message"] for c in checks]


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_checks_fail_on_the_stub(graded, exercise_id: str) -> None:
    failures = [c["message"] for c in graded["stub"].get(exercise_id, []) if c["outcome"] == "failed"]
    assert failures, f"{exercise_id}: the checks pass with the region stubbed out: they do not test it"
    assert any("NotImplementedError" in message for message in failures), failures


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_checks_fail_on_a_mutation(graded, exercise_id: str) -> None:
    if exercise_id not in MUTATIONS:
        pytest.fail(f"{exercise_id} has no mutation")
    checks = graded["mutation"].get(exercise_id, [])
    assert any(c["outcome"] == "failed" for c in checks), f"{exercise_id}: the mutation passes every check"

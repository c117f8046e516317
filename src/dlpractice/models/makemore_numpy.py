"""The makemore bigram and MLP in NumPy alone, with every backward pass written by hand.

This is the "without PyTorch" half of labs l1 and l2 (makemore lecture 4, "becoming a backprop
ninja"): each forward step is followed, in reverse, by its gradient. Both models take their weights
from the PyTorch models of `models/makemore.py`, so tests can check that the two agree step by step.
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood and its gradient with respect to the logits, (B, V)."""
    # BEGIN EXERCISE l2.1: the loss and its gradient dlogits = (softmax - one_hot) / B
    shifted = logits - logits.max(axis=1, keepdims=True)  # stable: exp never overflows
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    n = len(targets)
    loss = -np.log(probs[np.arange(n), targets]).mean()
    dlogits = probs.copy()
    dlogits[np.arange(n), targets] -= 1
    dlogits /= n
    # END EXERCISE
    return float(loss), dlogits


class NumpyBigram:
    """A (V, V) table of logits trained by gradient descent."""

    def __init__(self, logits: np.ndarray):
        self.logits = logits.astype(np.float64).copy()  # (V, V)

    def loss(self, prev: np.ndarray, targets: np.ndarray) -> float:
        return softmax_cross_entropy(self.logits[prev], targets)[0]

    def sgd_step(self, prev: np.ndarray, targets: np.ndarray, lr: float) -> float:
        """One gradient step on the batch; returns the loss before the step."""
        loss, dlogits = softmax_cross_entropy(self.logits[prev], targets)  # (B, V)
        grad = np.zeros_like(self.logits)
        np.add.at(grad, prev, dlogits)  # rows used several times accumulate their gradients
        self.logits -= lr * grad
        return loss


def batchnorm_backward(
    dout: np.ndarray, xhat: np.ndarray, gamma: np.ndarray, inv_std: np.ndarray
) -> np.ndarray:
    """Gradient of training-mode BatchNorm (biased batch variance) with respect to its input, (B, H)."""
    # BEGIN EXERCISE l2.2: backpropagate through the batch mean and variance in one expression
    n = len(dout)
    dxhat = dout * gamma  # (B, H)
    return inv_std / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
    # END EXERCISE


class NumpyMLP:
    """Embedding -> linear -> BatchNorm -> tanh -> linear, forward and backward by hand."""

    def __init__(self, weights: dict[str, np.ndarray], eps: float = 1e-5):
        self.C = weights["wte.weight"].astype(np.float64).copy()  # (V, E)
        self.W1 = weights["fc1.weight"].T.astype(np.float64).copy()  # (T*E, H)
        self.gamma = weights["bn.weight"].astype(np.float64).copy()  # (H,)
        self.beta = weights["bn.bias"].astype(np.float64).copy()  # (H,)
        self.W2 = weights["fc2.weight"].T.astype(np.float64).copy()  # (H, V)
        self.b2 = weights["fc2.bias"].astype(np.float64).copy()  # (V,)
        self.eps = eps

    def parameters(self) -> dict[str, np.ndarray]:
        return {
            "C": self.C,
            "W1": self.W1,
            "gamma": self.gamma,
            "beta": self.beta,
            "W2": self.W2,
            "b2": self.b2,
        }

    def forward(self, idx: np.ndarray, targets: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and the intermediate values the backward pass needs."""
        emb = self.C[idx]  # (B, T, E)
        x = emb.reshape(len(idx), -1)  # (B, T*E)
        pre = x @ self.W1  # (B, H)
        mean, var = pre.mean(0), pre.var(0)  # biased variance, as BatchNorm uses in training
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (pre - mean) * inv_std  # (B, H)
        h = np.tanh(self.gamma * xhat + self.beta)  # (B, H)
        logits = h @ self.W2 + self.b2  # (B, V)
        loss, dlogits = softmax_cross_entropy(logits, targets)
        return loss, {"idx": idx, "x": x, "xhat": xhat, "inv_std": inv_std, "h": h, "dlogits": dlogits}

    def backward(self, cache: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter, computed from the output back to the embedding."""
        dlogits, h, xhat = cache["dlogits"], cache["h"], cache["xhat"]
        dW2, db2 = h.T @ dlogits, dlogits.sum(0)
        dh = dlogits @ self.W2.T  # (B, H)
        dbn = dh * (1 - h**2)  # through tanh
        dgamma, dbeta = (dbn * xhat).sum(0), dbn.sum(0)
        dpre = batchnorm_backward(dbn, xhat, self.gamma, cache["inv_std"])  # (B, H)
        dW1 = cache["x"].T @ dpre
        demb = (dpre @ self.W1.T).reshape(*cache["idx"].shape, -1)  # (B, T, E)
        dC = np.zeros_like(self.C)
        np.add.at(dC, cache["idx"], demb)
        return {"C": dC, "W1": dW1, "gamma": dgamma, "beta": dbeta, "W2": dW2, "b2": db2}

    def sgd_step(self, idx: np.ndarray, targets: np.ndarray, lr: float) -> float:
        loss, cache = self.forward(idx, targets)
        grads = self.backward(cache)
        for name, param in self.parameters().items():
            param -= lr * grads[name]
        return loss

"""The NumPy autograd engine for the labs written "without PyTorch".

`Value` is the scalar engine the lesson starts from; `Tensor` is the array engine the labs use,
with `functional` (softmax, cross-entropy, conv2d, ...), `nn` (layers), `optim` (optimisers,
schedules, LR finder), `gradcheck` (finite differences) and `graph` (drawing the graph).
"""

from dlpractice.scratch import functional, nn, optim
from dlpractice.scratch.gradcheck import GradcheckError, gradcheck
from dlpractice.scratch.graph import draw_graph, to_dot
from dlpractice.scratch.tensor import Tensor, cat, is_grad_enabled, no_grad, stack, unbroadcast
from dlpractice.scratch.value import Value

__all__ = [
    "GradcheckError",
    "Tensor",
    "Value",
    "cat",
    "draw_graph",
    "functional",
    "gradcheck",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "optim",
    "stack",
    "to_dot",
    "unbroadcast",
]

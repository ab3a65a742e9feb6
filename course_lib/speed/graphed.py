"""Opt-in speed on the GPU: replay a layer's whole forward and backward as CUDA graphs.

Why a recurrent layer written in Python is slow on a GPU: every step launches about ten small
kernels (one matmul, then the gate sigmoids, tanh and products), and at H = 128 each launch costs
the CPU more time than the GPU spends on it. cuDNN runs the whole sequence in a few large
kernels. A CUDA graph records every launch of one forward and one backward pass once and then
replays them all with a single call, so the Python loop and the launch overhead disappear while
the math stays exactly course_lib's.

What it costs: the shapes are frozen (same T, B, dtype and device as the example), there is no
``lengths=`` or PackedSequence, recording takes a few warm-up passes, and the outputs live in the
graph's own memory: the next call overwrites them, so clone what you want to keep. The lectures
never use it; ``benchmarks/rnn.py`` measures it against cuDNN.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import torch
from torch import Tensor, nn

from course_lib._validate import check_float_like, check_positive_int, check_shape, check_tensor


class _Forward(nn.Module):
    """Holds the layer so that recording replaces this wrapper's forward, never the layer's."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor):
        return self.layer(x)


def graphed(layer: nn.Module, example: Tensor, warmup: int = 3) -> Callable[[Tensor], object]:
    """Record ``layer`` on inputs shaped like ``example``; return a function that replays it.

    The function takes ``x`` of exactly ``example``'s shape, dtype, device and ``requires_grad``
    and returns what ``layer(x)`` returns; its backward fills the layer's ``.grad`` as usual, so
    the optimiser and the training loop do not change. Record in the mode you will run in
    (``layer.train()`` or ``layer.eval()``). CUDA only.
    """
    check_tensor("example", example)
    check_positive_int("warmup", warmup)
    parameter = next(layer.parameters(), None)
    if parameter is None:
        raise ValueError("layer has no parameters to record")
    check_float_like("example", example, parameter)
    if example.device.type != "cuda":
        raise ValueError(
            f"graphed needs the layer and example on a CUDA device, got {example.device}; "
            "CUDA graphs exist only on NVIDIA GPUs (on the CPU, call the layer itself)"
        )
    training = layer.training
    wrapper = _Forward(layer).train(training)
    # Freeing an old graph while a new one records breaks the recording, and Python's garbage
    # collector may free one at any allocation: collect now and pause it while recording.
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        replay = torch.cuda.make_graphed_callables(wrapper, (example,), num_warmup_iters=warmup)
    finally:
        if was_enabled:
            gc.enable()
    shape, needs_grad = tuple(example.shape), example.requires_grad

    def run(x: Tensor):
        check_tensor("x", x)
        check_float_like("x", x, parameter)
        check_shape("x", x, shape)  # a graph would silently broadcast any other shape
        if x.requires_grad != needs_grad:
            raise ValueError(
                f"x.requires_grad is {x.requires_grad} but the graph was recorded with "
                f"{needs_grad}; record again with an example like x"
            )
        if layer.training != training:
            raise ValueError(
                f"the graph was recorded in {'training' if training else 'eval'} mode; "
                "record again after layer.train() or layer.eval()"
            )
        return replay(x)

    return run

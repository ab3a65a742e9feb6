"""What the library tests share: devices, state flattening, a loss that reaches every element,
and the comparison of outputs and gradients between course_lib and torch.nn.

Imported as ``from helpers import ...`` (pytest puts tests/ on sys.path, as for
wrong_implementations.py).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

# Every equivalence test runs on the CPU, and on CUDA where there is a GPU (skipped, and says so,
# where there is none).
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


def flat(state: object) -> tuple[Tensor, ...]:
    """A state as a tuple of tensors: ``h`` -> ``(h,)``, ``(h, c)`` -> ``(h, c)``."""
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)  # type: ignore[arg-type]


def weighted_loss(*tensors: Tensor) -> Tensor:
    """A scalar whose gradient differs for every element of every tensor.

    A plain ``sum()`` would give every element the same gradient, so a mistake that swaps two
    features (or two gates) would go unnoticed; weights from -1 to 1 along the last axis, and a
    square, tell them apart.
    """
    total = torch.zeros((), dtype=tensors[0].dtype, device=tensors[0].device)
    for tensor in tensors:
        weights = torch.linspace(-1, 1, tensor.shape[-1], dtype=tensor.dtype, device=tensor.device)
        total = total + (tensor * weights).sum() + tensor.square().sum()
    return total


def assert_same_results(
    ours: nn.Module,
    reference: nn.Module,
    inputs: tuple[object, ...],
    grad_inputs: tuple[Tensor, ...] = (),
    **tolerance: float,
) -> None:
    """Call both modules on ``inputs``; compare outputs, states and every gradient.

    The gradients are those of :func:`weighted_loss` of every output tensor, with respect to
    ``grad_inputs`` and to each of torch.nn's parameters (matched by name in ours).
    """
    expected = _tensors(reference(*inputs))
    got = _tensors(ours(*inputs))
    assert len(got) == len(expected)
    for index, (g, e) in enumerate(zip(got, expected)):
        torch.testing.assert_close(g, e, **tolerance, msg=lambda m, i=index: f"output {i}: {m}")
    names = [name for name, _ in reference.named_parameters()]
    ours_params = dict(ours.named_parameters())
    wrt_ref = [*grad_inputs, *reference.parameters()]
    wrt_ours = [*grad_inputs, *(ours_params[name] for name in names)]
    grads_ref = torch.autograd.grad(weighted_loss(*expected), wrt_ref, allow_unused=True)
    grads_ours = torch.autograd.grad(weighted_loss(*got), wrt_ours, allow_unused=True)
    labels = [f"input {i}" for i in range(len(grad_inputs))] + names
    for label, g, e in zip(labels, grads_ours, grads_ref):
        assert (g is None) == (e is None), f"gradient of {label}: only one side has one"
        if e is not None:
            torch.testing.assert_close(
                g, e, **tolerance, msg=lambda m, label=label: f"gradient of {label}: {m}"
            )


def _tensors(result: object) -> tuple[Tensor, ...]:
    """Every tensor of a module's result, in order: (output, h_n[, c_n]) or (h[, c])."""
    if isinstance(result, Tensor):
        return (result,)
    if isinstance(result, nn.utils.rnn.PackedSequence):
        return (result.data,)
    found: list[Tensor] = []
    for part in result:  # type: ignore[attr-defined]
        found.extend(_tensors(part))
    return tuple(found)


def copy_weights(ours: nn.Module, reference: nn.Module) -> None:
    """Load torch.nn's weights into ours; only our own extensions (peepholes) may be left out."""
    result = ours.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all(key.startswith("weight_c") for key in result.missing_keys), result.missing_keys

"""Checks for chapter 01: the tanh RNN in NumPy, its loop over time, and BPTT by hand.

References: ``torch.rnn_tanh_cell`` (the kernel of ``torch.nn.RNNCell``) for the step and the
loop; torch autograd and a numerical gradient (central differences) for backpropagation through
time. The NumPy exercises use one bias ``b``; PyTorch's two biases only matter through their sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from course_lib.checks.core import Check, Comparison, keeps_rng, randn, register, run, steps_phrase


def _rnn_reference(x, h_prev, W_ih, W_hh, b):
    t = torch.from_numpy
    return torch.rnn_tanh_cell(t(x), t(h_prev), t(W_ih), t(W_hh), t(b), t(np.zeros_like(b))).numpy()


def _rnn_variant(squash=np.tanh, transpose=True, recurrent=True, bias=True):
    """The exercise's function with the mistakes that the arguments switch on."""

    def step(x, h_prev, W_ih, W_hh, b):
        pre = x @ W_ih.T + (h_prev @ (W_hh.T if transpose else W_hh) if recurrent else 0)
        return squash(pre + (b if bias else 0))

    return step


def _rnn_weights(g: torch.Generator, I: int, H: int) -> tuple:
    return tuple(randn(g, *s, scale=0.5).numpy() for s in ((H, I), (H, H), (H,)))


def _rnn_step_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    I, H = 3, 4
    W = _rnn_weights(g, I, H)
    return [
        ("a batch of 3", (randn(g, 3, I).numpy(), randn(g, 3, H).numpy(), *W)),
        ("a batch of 1", (randn(g, 1, I).numpy(), randn(g, 1, H).numpy(), *W)),
        ("a zero initial state", (randn(g, 2, I).numpy(), np.zeros((2, H)), *W)),
    ]


def _rnn_step_mistakes() -> list:
    return [
        (
            "your new state is squashed with the sigmoid; the tanh RNN uses np.tanh, whose outputs "
            "lie in (-1, 1) and are centred on 0.",
            _rnn_variant(squash=lambda a: 1 / (1 + np.exp(-a))),
        ),
        (
            "your new state is not squashed: apply np.tanh to the whole sum.",
            _rnn_variant(squash=lambda a: a),
        ),
        (
            "you multiplied h_prev by W_hh instead of its transpose. Each row of W_hh belongs to "
            "one hidden unit, so for a batch of row vectors write h_prev @ W_hh.T.",
            _rnn_variant(transpose=False),
        ),
        (
            "your new state ignores h_prev: the recurrence needs the term h_prev @ W_hh.T.",
            _rnn_variant(recurrent=False),
        ),
        ("the bias b is missing from the sum.", _rnn_variant(bias=False)),
    ]


RNN_STEP = register(
    Check(
        "check_rnn_step",
        "rnn_step",
        _rnn_step_cases,
        (Comparison(_rnn_reference, _rnn_step_mistakes, against="torch.nn.RNNCell"),),
        outputs=("h",),
    )
)


@keeps_rng
def check_rnn_step(rnn_step: Callable, seed: int = 0) -> None:
    """Test 1.1: ``rnn_step(x, h_prev, W_ih, W_hh, b) -> h`` in NumPy."""
    run(RNN_STEP, rnn_step, seed)


def _forward_reference(xs, h0, W_ih, W_hh, b):
    states, h = [], h0
    for x in xs:
        h = _rnn_reference(x, h, W_ih, W_hh, b)
        states.append(h)
    return np.stack(states)


def _forward_variant(kind: str):
    """The exercise's function with the mistakes that the arguments switch on."""

    def forward(xs, h0, W_ih, W_hh, b):
        states, h = [], h0
        for x in xs[::-1] if kind == "reversed" else xs:
            new = np.tanh(x @ W_ih.T + (h0 if kind == "no_carry" else h) @ W_hh.T + b)
            states.append(h if kind == "shifted" else new)
            h = new
        if kind == "last":
            return h
        return np.stack(([h0] if kind == "with_h0" else []) + states)

    return forward


def _rnn_forward_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    I, H = 3, 4
    W = _rnn_weights(g, I, H)
    return [
        (
            f"{steps_phrase(T)} and a batch of {B}",
            (randn(g, T, B, I).numpy(), randn(g, B, H).numpy(), *W),
        )
        for T, B in ((5, 3), (1, 2), (4, 1))
    ]


def _rnn_forward_mistakes() -> list:
    return [
        (
            "you returned only the last state; return all T states stacked into one array of "
            "shape (T, B, H), e.g. with np.stack.",
            _forward_variant("last"),
        ),
        (
            "your states include h0: return h_1 ... h_T, one per input step.",
            _forward_variant("with_h0"),
        ),
        (
            "your states are shifted by one step: hs[t] must be the state after reading xs[t] "
            "(h_1 first), not the state before it.",
            _forward_variant("shifted"),
        ),
        (
            "every step starts again from h0: feed each new state back in as h_prev of the next "
            "step.",
            _forward_variant("no_carry"),
        ),
        ("you read the sequence backwards: start at xs[0].", _forward_variant("reversed")),
    ]


RNN_FORWARD = register(
    Check(
        "check_rnn_forward",
        "rnn_forward",
        _rnn_forward_cases,
        (
            Comparison(
                _forward_reference,
                _rnn_forward_mistakes,
                against="torch.nn.RNNCell run step by step",
            ),
        ),
        outputs=("hs",),
    )
)


@keeps_rng
def check_rnn_forward(rnn_forward: Callable, seed: int = 0) -> None:
    """Test 1.2: ``rnn_forward(xs, h0, W_ih, W_hh, b) -> hs``, all T states, (T, B, H)."""
    run(RNN_FORWARD, rnn_forward, seed)


GRAD_KEYS = ("W_ih", "W_hh", "b", "h0")


def _loss(xs, h0, W_ih, W_hh, b, dhs) -> float:
    """The loss whose gradient rnn_backward computes: sum over t of dhs[t] * h_t."""
    return float((_forward_reference(xs, h0, W_ih, W_hh, b) * dhs).sum())


def _bptt_reference(xs, h0, hs, W_ih, W_hh, b, dhs):
    params = {
        k: torch.tensor(v, requires_grad=True) for k, v in zip(GRAD_KEYS, (W_ih, W_hh, b, h0))
    }
    h, loss = params["h0"], 0.0
    zero = torch.zeros_like(params["b"])
    for x, dh in zip(torch.from_numpy(xs), torch.from_numpy(dhs)):
        h = torch.rnn_tanh_cell(x, h, params["W_ih"], params["W_hh"], params["b"], zero)
        loss = loss + (h * dh).sum()
    grads = torch.autograd.grad(loss, list(params.values()))
    return {k: grad.numpy() for k, grad in zip(GRAD_KEYS, grads)}


def _numerical_gradient(xs, h0, W_ih, W_hh, b, dhs, eps: float = 1e-6) -> dict:
    """Central differences, one parameter entry at a time: slow, simple, independent of autograd."""
    values = {"W_ih": W_ih, "W_hh": W_hh, "b": b, "h0": h0}
    grads = {}
    for key, value in values.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in values.items()}
            shifted[key][index] += eps
            up = _loss(xs, shifted["h0"], shifted["W_ih"], shifted["W_hh"], shifted["b"], dhs)
            shifted[key][index] -= 2 * eps
            down = _loss(xs, shifted["h0"], shifted["W_ih"], shifted["W_hh"], shifted["b"], dhs)
            grad[index] = (up - down) / (2 * eps)
        grads[key] = grad
    return grads


def _numerical_reference(xs, h0, hs, W_ih, W_hh, b, dhs):
    return _numerical_gradient(xs, h0, W_ih, W_hh, b, dhs)


def _bptt_variant(
    recurrent=True, local="h", carry_T=False, dW_hh_with="prev", forward=False, sum_b=True
):
    """The exercise's function with the mistakes that the arguments switch on."""

    def backward(xs, h0, hs, W_ih, W_hh, b, dhs):
        dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
        dh_next = np.zeros_like(h0)
        for t in range(len(xs)) if forward else reversed(range(len(xs))):
            h_prev = hs[t - 1] if t > 0 else h0
            dh = dhs[t] + (dh_next if recurrent else 0)
            da = dh * {"h": 1 - hs[t] ** 2, "prev": 1 - h_prev**2, "none": 1.0}[local]
            dW_ih += da.T @ xs[t]
            dW_hh += da.T @ (h_prev if dW_hh_with == "prev" else hs[t])
            db = db + (da.sum(axis=0) if sum_b else da)
            dh_next = da @ (W_hh.T if carry_T else W_hh)
        return {"W_ih": dW_ih, "W_hh": dW_hh, "b": db, "h0": dh_next}

    return backward


def _rnn_backward_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    I, H = 2, 3
    W = _rnn_weights(g, I, H)
    cases = []
    for T, B in ((4, 2), (1, 2), (3, 1)):
        xs, h0 = randn(g, T, B, I).numpy(), randn(g, B, H).numpy()
        hs = _forward_reference(xs, h0, *W)
        cases.append(
            (f"{steps_phrase(T)} and a batch of {B}", (xs, h0, hs, *W, randn(g, T, B, H).numpy()))
        )
    return cases


def _rnn_backward_mistakes() -> list:
    return [
        (
            "no gradient flows back through time: the gradient at h_t is dhs[t] plus what step t+1 "
            "sends back to it (dh_next = da @ W_hh).",
            _bptt_variant(recurrent=False),
        ),
        (
            "the tanh derivative is missing: h_t = tanh(a_t), so da = dh * (1 - h_t**2).",
            _bptt_variant(local="none"),
        ),
        (
            "your tanh derivative uses h_{t-1}; it must use the output of this step's tanh: "
            "da = dh * (1 - hs[t]**2).",
            _bptt_variant(local="prev"),
        ),
        (
            "the gradient sent back to h_{t-1} uses W_hh.T; since a_t = ... + h_{t-1} @ W_hh.T, it "
            "is da @ W_hh.",
            _bptt_variant(carry_T=True),
        ),
        (
            "dW_hh pairs da_t with h_t; the weight multiplied h_{t-1}, so dW_hh += da.T @ h_{t-1}.",
            _bptt_variant(dW_hh_with="h"),
        ),
        (
            "your loop runs forwards in time; backpropagation starts at the last step, "
            "for t in reversed(range(T)).",
            _bptt_variant(forward=True),
        ),
        (
            "db keeps a batch axis: sum da over the batch, db += da.sum(axis=0).",
            _bptt_variant(sum_b=False),
        ),
    ]


RNN_BACKWARD = register(
    Check(
        "check_rnn_backward",
        "rnn_backward",
        _rnn_backward_cases,
        (
            Comparison(_bptt_reference, _rnn_backward_mistakes, against="torch autograd"),
            # A second, independent reference: nudge each parameter both ways and watch the loss.
            Comparison(
                _numerical_reference,
                against="a numerical gradient (central differences)",
                first=1,
            ),
        ),
        outputs=GRAD_KEYS,
        as_dict=True,
    )
)


@keeps_rng
def check_rnn_backward(rnn_backward: Callable, seed: int = 0) -> None:
    """Test 1.3: ``rnn_backward(xs, h0, hs, W_ih, W_hh, b, dhs) -> {"W_ih", "W_hh", "b", "h0"}``."""
    run(RNN_BACKWARD, rnn_backward, seed)

"""Checks for chapter 02: the LSTM step, the forget-gate bias and the memory's half-life.

References: ``torch.lstm_cell`` (the kernel of ``torch.nn.LSTMCell``) and
``course_lib.cells.init_forget_bias``. The LSTM's known mistakes include every wrong order of the
four gate blocks, not only the usual i|f|o|g.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

from course_lib.cells import init_forget_bias
from course_lib.checks.core import (
    _ERROR_HINTS,
    ACTIVATIONS,
    Check,
    Comparison,
    Mistake,
    cell_cases,
    gate_order_mistakes,
    keeps_rng,
    randn,
    register,
    run,
)


def _lstm_reference(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.lstm_cell(x, (h_prev, c_prev), weight_ih, weight_hh, bias_ih, bias_hh)


def _lstm_variant(
    order="ifgo", acts="ssts", forget=True, write=True, h_from="c", biases=2, swap=False
):
    """The exercise's function with the mistakes that the arguments switch on."""

    def step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
        pre = x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + (bias_hh if biases == 2 else 0)
        blocks = dict(zip(order, pre.chunk(4, dim=-1)))
        i, f, g, o = (ACTIVATIONS[a](blocks[k]) for a, k in zip(acts, "ifgo"))
        c = (f * c_prev if forget else c_prev) + (i * g if write else g)
        h = o * {"c": torch.tanh(c), "raw": c, "c_prev": torch.tanh(c_prev)}[h_from]
        return (c, h) if swap else (h, c)

    return step


def _lstm_mistakes() -> list[Mistake]:
    gates = {"i": "input gate", "f": "forget gate", "o": "output gate"}
    mistakes = [
        (
            f"your {gates[k]} uses tanh; the gates i, f and o use the sigmoid, so each is a soft "
            f"switch between 0 and 1 (only the candidate g uses tanh).",
            _lstm_variant(acts="".join("t" if gate == k else a for gate, a in zip("ifgo", "ssts"))),
        )
        for k in gates
    ]
    mistakes += [
        (
            "your candidate g uses the sigmoid; g is the new content to write and uses tanh, so it "
            "can be negative.",
            _lstm_variant(acts="ssss"),
        ),
        (
            "all four blocks use tanh; i, f and o are gates and use the sigmoid.",
            _lstm_variant(acts="tttt"),
        ),
        (
            "your cell state ignores the forget gate: it should be c = f * c_prev + i * g.",
            _lstm_variant(forget=False),
        ),
        (
            "the input gate does not scale the candidate: c = f * c_prev + i * g.",
            _lstm_variant(write=False),
        ),
        (
            "h = o * c: you forgot the tanh on the cell state, h = o * tanh(c).",
            _lstm_variant(h_from="raw"),
        ),
        (
            "h uses the old cell state c_prev; use the new one, h = o * tanh(c).",
            _lstm_variant(h_from="c_prev"),
        ),
        (
            "only bias_ih is added; PyTorch has two biases and adds both (only their sum matters).",
            _lstm_variant(biases=1),
        ),
        ("you returned (c, h); return (h, c), like torch.nn.LSTMCell.", _lstm_variant(swap=True)),
    ]
    layout = (
        "PyTorch stacks the rows of weight_ih and weight_hh as i|f|g|o: input gate rows 0:H, "
        "forget gate H:2H, candidate 2H:3H, output gate 3H:4H."
    )
    return mistakes + gate_order_mistakes("ifgo", layout, _lstm_variant)


LSTM_STEP = register(
    Check(
        "check_lstm_step",
        "lstm_step",
        lambda seed: cell_cases(torch.Generator().manual_seed(seed), 3, 4, 4, cell_state=True),
        (Comparison(_lstm_reference, _lstm_mistakes, against="torch.nn.LSTMCell", gradients=True),),
        outputs=("h", "c"),
    )
)


@keeps_rng
def check_lstm_step(lstm_step: Callable, seed: int = 0) -> None:
    """Test 2.1: ``lstm_step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh)``."""
    run(LSTM_STEP, lstm_step, seed)


def _forget_bias_reference(cell, value):
    init_forget_bias(cell.bias_ih, cell.bias_hh, value)


def _as_state(setter: Callable) -> Callable:
    """Turn an in-place setter into a function returning the cell's parameters afterwards."""

    def run(cell, value):
        setter(cell, value)
        return {name: p.detach().clone() for name, p in cell.named_parameters()}

    run.__signature__ = inspect.signature(_forget_bias_reference)  # type: ignore[attr-defined]
    return run


def _bias_variant(blocks=(1,), value_hh: str = "zero", whole=False):
    """The exercise's function with the mistakes that the arguments switch on."""

    def setter(cell, value):
        H = cell.hidden_size
        with torch.no_grad():
            for block in blocks:
                rows = slice(None) if whole else slice(block * H, (block + 1) * H)
                cell.bias_ih[rows] = value
                if value_hh != "keep":
                    cell.bias_hh[rows] = value if value_hh == "value" else 0.0

    return setter


def _forget_bias_cases(seed: int) -> list:
    torch.manual_seed(seed)  # Check.make_cases restores the global random state afterwards
    return [
        (f"an nn.LSTMCell(3, {H}) and value={v}", (nn.LSTMCell(3, H).double(), v))
        for H, v in ((4, 1.0), (1, 3.0), (5, -2.0))
    ]


def _forget_bias_mistakes() -> list:
    return [
        (
            "the biases did not change. Fill the slices of cell.bias_ih and cell.bias_hh in place "
            "(changing a copy, or returning a new cell, leaves this one as it was).",
            lambda cell, value: None,
        ),
        (
            "you set the first block, which is the input gate; the forget gate is the second "
            "block, rows H:2H (the order is i|f|g|o).",
            _bias_variant(blocks=(0,)),
        ),
        (
            "you set the third block (the candidate g); the forget gate is rows H:2H.",
            _bias_variant(blocks=(2,)),
        ),
        (
            "you set the forget slice of both biases to value, so the gate starts at "
            "sigmoid(2 * value): only b_ih + b_hh matters, so set bias_hh's slice to 0.",
            _bias_variant(value_hh="value"),
        ),
        (
            "the forget slice of bias_hh still holds its random value, so the sum is not value: "
            "set it to 0.",
            _bias_variant(value_hh="keep"),
        ),
        (
            "you set the whole bias vector; only the forget gate's slice, rows H:2H, should "
            "change.",
            _bias_variant(whole=True),
        ),
    ]


FORGET_BIAS = register(
    Check(
        "check_forget_bias",
        "set_forget_bias",
        _forget_bias_cases,
        (
            Comparison(
                _forget_bias_reference,
                _forget_bias_mistakes,
                against="course_lib.cells.init_forget_bias",
            ),
        ),
        outputs=("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
        as_dict=True,
        adapt=_as_state,  # the learner's setter, the reference and the mistakes alike
        error_hints=(
            (
                "leaf Variable",
                "PyTorch refuses to change a parameter in place while it tracks "
                "gradients: wrap the assignment in `with torch.no_grad():`.",
            ),
        ),
    )
)


@keeps_rng
def check_forget_bias(set_forget_bias: Callable, seed: int = 0) -> None:
    """Test 2.2: ``set_forget_bias(cell, value)`` sets b_if + b_hf = value in place."""
    run(FORGET_BIAS, set_forget_bias, seed)


def _half_life_reference(forget_bias):
    return math.log(0.5) / math.log(torch.sigmoid(torch.tensor(float(forget_bias))).item())


def _half_life_cases(seed: int) -> list:
    biases = [3.0, 1.0, 0.0, -1.5] + [
        round(float(randn(torch.Generator().manual_seed(seed), 1)), 3)
    ]
    return [(f"forget_half_life({b})", (b,)) for b in biases]


def _sigmoid(b):
    return 1 / (1 + math.exp(-b))


def _half_life_mistakes() -> list:
    f = _sigmoid
    return [
        (
            "you used the bias itself as the forget gate; the gate is "
            "f = sigmoid(b) = 1 / (1 + e^-b).",
            lambda b: math.log(0.5) / math.log(b),
        ),
        (
            "that is the mean lifetime 1 / (1 - f); the half-life n solves f**n = 1/2, so n = "
            "log(1/2) / log(f).",
            lambda b: 1 / (1 - f(b)),
        ),
        (
            "your ratio is upside down: f**n = 1/2 gives n = log(1/2) / log(f).",
            lambda b: math.log(f(b)) / math.log(0.5),
        ),
        (
            "you used 1 - f, the part forgotten per step; the part kept is f itself.",
            lambda b: math.log(0.5) / math.log(1 - f(b)),
        ),
        (
            "return the exact number of steps, a float; don't round it.",
            lambda b: math.ceil(math.log(0.5) / math.log(f(b))),
        ),
        (
            "return the exact number of steps, a float; don't round it.",
            lambda b: round(math.log(0.5) / math.log(f(b))),
        ),
    ]


HALF_LIFE = register(
    Check(
        "check_half_life",
        "forget_half_life",
        _half_life_cases,
        (
            Comparison(
                _half_life_reference, _half_life_mistakes, against="log(1/2) / log(sigmoid(b))"
            ),
        ),
        outputs=("steps",),
    )
)


@keeps_rng
def check_half_life(forget_half_life: Callable, seed: int = 0) -> None:
    """Test 2.3: ``forget_half_life(forget_bias)``, the steps until c halves when f = sigmoid(b)."""
    run(HALF_LIFE, forget_half_life, seed)


# --- 2.4 the whole layer over a padded batch ----------------------------------------------------


def _layer_variant(freeze=True, zero_output=True, final="state", swap=False):
    """The exercise's function with the mistakes that the arguments switch on."""

    def run(xs, lengths, weight_ih, weight_hh, bias_ih, bias_hh):
        T, B, _ = xs.shape
        H = weight_hh.shape[1]
        h = c = torch.zeros(B, H, dtype=xs.dtype)
        outputs = []
        for t in range(T):
            h_new, c_new = torch.lstm_cell(xs[t], (h, c), weight_ih, weight_hh, bias_ih, bias_hh)
            real = (t < lengths).unsqueeze(-1)  # (B, 1)
            h, c = (
                (torch.where(real, h_new, h), torch.where(real, c_new, c))
                if freeze
                else (
                    h_new,
                    c_new,
                )
            )
            outputs.append(torch.where(real, h, torch.zeros_like(h)) if zero_output else h)
        output = torch.stack(outputs)
        if final == "last_row":
            h, c = output[-1], c
        return (output, c, h) if swap else (output, h, c)

    return run


# torch.lstm_cell stepped over time with the states frozen past each length; the tests check that
# it equals course_lib.layers.LSTM with lengths (itself tested against torch.nn.LSTM, packed).
_layer_reference = _layer_variant()


def _layer_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    I, H = 3, 4
    weights = (
        randn(g, 4 * H, I, scale=0.6),
        randn(g, 4 * H, H, scale=0.6),
        randn(g, 4 * H, scale=0.5),
        randn(g, 4 * H, scale=0.5),
    )
    cases = []
    for T, lengths in ((5, [5, 3, 1]), (4, [4, 4]), (1, [1, 1]), (6, [2])):
        description = f"lengths {tuple(lengths)} (T={T})"
        cases.append((description, (randn(g, T, len(lengths), I), torch.tensor(lengths), *weights)))
    return cases


def _layer_mistakes() -> list[Mistake]:
    return [
        (
            "your states keep changing past each sequence's length, so h_n and c_n of a short "
            "sequence have read the padding. At step t, keep the old (h, c) where t >= lengths[b] "
            "(torch.where with a (B, 1) mask).",
            _layer_variant(freeze=False),
        ),
        (
            "your states are right, but the outputs at padded steps are not zero: output[t, b] "
            "is 0 where t >= lengths[b].",
            _layer_variant(zero_output=False),
        ),
        (
            "nothing is masked: the states run over the padding and the padded outputs are not "
            "zero. Keep the old (h, c) where t >= lengths[b] (torch.where with a (B, 1) mask) "
            "and make output[t, b] zero there.",
            _layer_variant(freeze=False, zero_output=False),
        ),
        (
            "h_n is output[-1], which is zero (padding) for a short sequence; h_n is the state "
            "after each sequence's last real step.",
            _layer_variant(final="last_row"),
        ),
        (
            "you returned (output, c_n, h_n); the order is (output, h_n, c_n).",
            _layer_variant(swap=True),
        ),
    ]


LSTM_LAYER = register(
    Check(
        "check_lstm_layer",
        "lstm_layer",
        _layer_cases,
        (
            Comparison(
                _layer_reference,
                _layer_mistakes,
                against="torch.lstm_cell stepped with the padding masked",
                gradients=True,
            ),
        ),
        outputs=("output", "h_n", "c_n"),
        error_hints=(
            *_ERROR_HINTS,
            (
                "to have the same dtype",
                "Your function mixes float32 and float64: the check gives float64 inputs, so "
                "create the zero states with dtype=xs.dtype (torch.zeros(B, H, dtype=xs.dtype)).",
            ),
        ),
    )
)


@keeps_rng
def check_lstm_layer(lstm_layer: Callable, seed: int = 0) -> None:
    """Test 2.4: ``lstm_layer(xs, lengths, weight_ih, ...) -> (output, h_n, c_n)``."""
    run(LSTM_LAYER, lstm_layer, seed)

"""Checks for chapter 03: the GRU step in PyTorch's form, and parameter counts.

References: ``torch.gru_cell`` (the kernel of ``torch.nn.GRUCell``), whose reset gate multiplies
``W_hn h + b_hn`` after the matrix (Cho et al. 2014 put it before), and the parameters of
``torch.nn.RNN`` / ``LSTM`` / ``GRU`` themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn

from course_lib.checks.core import (
    ACTIVATIONS,
    Check,
    Comparison,
    cell_cases,
    gate_order_mistakes,
    keeps_rng,
    register,
    run,
)


def _gru_reference(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.gru_cell(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)


def _gru_variant(order="rzn", reset="after", keep_z=True, cand="t", gate="s"):
    """The exercise's function with the mistakes that the arguments switch on."""

    def step(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
        xg = dict(zip(order, (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)))
        W = dict(zip(order, weight_hh.chunk(3, dim=0)))
        b = dict(zip(order, bias_hh.chunk(3)))
        r = ACTIVATIONS[gate](xg["r"] + h_prev @ W["r"].T + b["r"])
        z = ACTIVATIONS[gate](xg["z"] + h_prev @ W["z"].T + b["z"])
        hn = {
            "after": lambda: r * (h_prev @ W["n"].T + b["n"]),
            "before": lambda: (r * h_prev) @ W["n"].T + b["n"],
            "bias_outside": lambda: r * (h_prev @ W["n"].T) + b["n"],
            "none": lambda: h_prev @ W["n"].T + b["n"],
        }[reset]()
        n = ACTIVATIONS[cand](xg["n"] + hn)
        return (1 - z) * n + z * h_prev if keep_z else z * n + (1 - z) * h_prev

    return step


def _gru_mistakes() -> list:
    mistakes = [
        (
            "you applied the reset gate before the matrix, W_hn (r * h_prev): that is Cho et al.'s "
            "form. PyTorch applies it after the matrix and its bias: "
            "n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn)).",
            _gru_variant(reset="before"),
        ),
        (
            "b_hn sits inside the reset in PyTorch's GRU, r * (W_hn h_prev + b_hn); you added it "
            "outside.",
            _gru_variant(reset="bias_outside"),
        ),
        (
            "your candidate n ignores the reset gate: "
            "n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn)).",
            _gru_variant(reset="none"),
        ),
        (
            "z and 1 - z are swapped: PyTorch keeps the old state with z, h = (1 - z) * n + z * "
            "h_prev.",
            _gru_variant(keep_z=False),
        ),
        (
            "your candidate n uses the sigmoid; it is new content and uses tanh.",
            _gru_variant(cand="s"),
        ),
        (
            "your gates r and z use tanh; gates use the sigmoid, to lie between 0 and 1.",
            _gru_variant(gate="t"),
        ),
    ]
    layout = "PyTorch stacks them as r|z|n: reset rows 0:H, update H:2H, candidate 2H:3H."
    mistakes += gate_order_mistakes("rzn", layout, _gru_variant)
    return mistakes


GRU_STEP = register(
    Check(
        "check_gru_step",
        "gru_step",
        lambda seed: cell_cases(torch.Generator().manual_seed(seed), 3, 4, 3, cell_state=False),
        (Comparison(_gru_reference, _gru_mistakes, against="torch.nn.GRUCell", gradients=True),),
        outputs=("h",),
    )
)


@keeps_rng
def check_gru_step(gru_step: Callable, seed: int = 0) -> None:
    """Test 3.1: ``gru_step(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)``, PyTorch's form."""
    run(GRU_STEP, gru_step, seed)


def _count_reference(kind, input_size, hidden_size, num_layers=1, bidirectional=False):
    module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    return sum(
        p.numel()
        for p in module(
            input_size, hidden_size, num_layers, bidirectional=bidirectional
        ).parameters()
    )


def _count_variant(gates=(1, 4, 3), biases=2, upper="DH", directions=True, layers=True):
    """The exercise's function with the mistakes that the arguments switch on."""

    def count(kind, input_size, hidden_size, num_layers=1, bidirectional=False):
        k = dict(zip(("rnn", "lstm", "gru"), gates))[kind]
        D = 2 if bidirectional else 1
        total = 0
        for layer in range(num_layers if layers else 1):
            size = (
                input_size
                if layer == 0
                else {"DH": D * hidden_size, "H": hidden_size, "I": input_size}[upper]
            )
            total += (D if directions else 1) * k * hidden_size * (size + hidden_size + biases)
        return total

    return count


def _count_cases(seed: int) -> list:
    # The third size depends on the seed, over a range too wide for a table of answers.
    sizes = [(5, 7), (10, 3), (2 + seed % 5 + 5 * (seed // 15 % 20), 6 + seed % 3)]
    configs = [
        ("lstm", 1, False),
        ("gru", 1, False),
        ("rnn", 1, False),
        ("lstm", 3, False),
        ("gru", 1, True),
        ("lstm", 2, True),
        ("gru", 3, True),
        ("rnn", 2, True),
    ]
    cases = [
        (
            f"count_parameters({kind!r}, {I}, {H}, num_layers={L}, bidirectional={D})",
            (kind, I, H, L, D),
        )
        for (I, H), (kind, L, D) in itertools.product(sizes, configs)
    ]
    cases.sort(key=lambda case: (case[1][3], case[1][4]))  # the simplest layers first
    return cases


def _count_mistakes() -> list:
    mistakes = [
        (
            "you counted one bias per gate; torch.nn has two, bias_ih and bias_hh (the same count "
            "as its weights' rows, twice).",
            _count_variant(biases=1),
        ),
        (
            "you counted no biases; torch.nn layers have bias_ih and bias_hh.",
            _count_variant(biases=0),
        ),
        (
            "the number of blocks is off: an RNN has 1, an LSTM 4 (i, f, g, o), a GRU 3 (r, z, n).",
            _count_variant(gates=(1, 4, 4)),
        ),
        (
            "the number of blocks is off: an RNN has 1, an LSTM 4 (i, f, g, o), a GRU 3 (r, z, n).",
            _count_variant(gates=(1, 3, 3)),
        ),
        (
            "layers above the first read the layer below, so their input size is hidden_size times "
            "the number of directions, not input_size.",
            _count_variant(upper="I"),
        ),
        (
            "a bidirectional layer passes 2 * hidden_size features up, so the layers above it have "
            "input size 2 * hidden_size.",
            _count_variant(upper="H"),
        ),
        (
            "a bidirectional layer has two full sets of weights, one per direction.",
            _count_variant(directions=False),
        ),
        ("each of the num_layers layers has its own weights.", _count_variant(layers=False)),
    ]
    return mistakes


COUNT_PARAMETERS = register(
    Check(
        "check_count_parameters",
        "count_parameters",
        _count_cases,
        (Comparison(_count_reference, _count_mistakes, against="torch.nn's parameters"),),
        outputs=("count",),
    )
)


@keeps_rng
def check_count_parameters(count_parameters: Callable, seed: int = 0) -> None:
    """Test 3.2: ``count_parameters(kind, input_size, hidden_size, num_layers, bidirectional)``."""
    run(COUNT_PARAMETERS, count_parameters, seed)

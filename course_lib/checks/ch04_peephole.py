"""Checks for chapter 04: the LSTM step with diagonal peepholes, and what peepholes cost.

Reference: ``course_lib.cells`` (``peephole_pointwise`` and ``PeepholeLSTMCell``), with non-zero
peephole weights, so that a missing or misplaced peephole shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib.cells import PeepholeLSTMCell, peephole_pointwise
from course_lib.checks.core import Check, Comparison, cell_cases, keeps_rng, randn, register, run


def _peephole_reference(
    x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co
):
    gates = x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + bias_hh
    h, c, _ = peephole_pointwise(gates, c_prev, weight_ci, weight_cf, weight_co)
    return h, c


def _peephole_variant(peep_i="ci", peep_f="cf", peep_o="new"):
    """The exercise's function with the mistakes that the arguments switch on."""

    def step(
        x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co
    ):
        w = {"ci": weight_ci, "cf": weight_cf, "none": torch.zeros_like(weight_ci)}
        i, f, g, o = (x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + bias_hh).chunk(4, dim=-1)
        i = torch.sigmoid(i + w[peep_i] * c_prev)
        f = torch.sigmoid(f + w[peep_f] * c_prev)
        c = f * c_prev + i * torch.tanh(g)
        o = torch.sigmoid(o + {"new": weight_co * c, "old": weight_co * c_prev, "none": 0}[peep_o])
        return o * torch.tanh(c), c

    return step


def _peephole_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    H = 4
    peepholes = tuple(randn(g, H) for _ in range(3))
    return cell_cases(g, 3, H, 4, cell_state=True, extra=peepholes)


def _peephole_mistakes() -> list:
    return [
        (
            "your output gate peeks at c_{t-1}; it should see the new cell state c_t, so compute c "
            "first and then o = sigmoid(... + w_co * c).",
            _peephole_variant(peep_o="old"),
        ),
        (
            "your output gate has no peephole: add weight_co * c (the new cell state).",
            _peephole_variant(peep_o="none"),
        ),
        (
            "your forget gate has no peephole: add weight_cf * c_prev.",
            _peephole_variant(peep_f="none"),
        ),
        (
            "your input gate has no peephole: add weight_ci * c_prev.",
            _peephole_variant(peep_i="none"),
        ),
        (
            "weight_ci and weight_cf are swapped: the input gate uses weight_ci, the forget gate "
            "weight_cf.",
            _peephole_variant(peep_i="cf", peep_f="ci"),
        ),
        (
            "there are no peephole terms at all: this is the plain LSTM step.",
            _peephole_variant("none", "none", "none"),
        ),
    ]


PEEPHOLE_STEP = register(
    Check(
        "check_peephole_step",
        "peephole_step",
        _peephole_cases,
        (
            Comparison(
                _peephole_reference,
                _peephole_mistakes,
                against="course_lib.cells.PeepholeLSTMCell",
                gradients=True,
            ),
        ),
        outputs=("h", "c"),
    )
)


@keeps_rng
def check_peephole_step(peephole_step: Callable, seed: int = 0) -> None:
    """Test 4.1: the peephole LSTM step with diagonal peepholes -> (h, c)."""
    run(PEEPHOLE_STEP, peephole_step, seed)


def _peephole_count_reference(input_size, hidden_size, full=False):
    return sum(p.numel() for p in PeepholeLSTMCell(input_size, hidden_size, full=full).parameters())


def _peephole_count_variant(peepholes=3, biases=2, full_as="H*H", diagonal_as="H", lstm=True):
    """The exercise's function with the mistakes that the arguments switch on."""

    def count(input_size, hidden_size, full=False):
        H = hidden_size
        per_peephole = {"H": H, "H*H": H * H, "3H": 3 * H}[full_as if full else diagonal_as]
        return (4 * H * (input_size + H + biases) if lstm else 0) + peepholes * per_peephole

    return count


def _peephole_count_cases(seed: int) -> list:
    # The last size depends on the seed, over a range too wide for a table of answers.
    sizes = [(3, 4), (10, 20), (1, 1), (2 + seed % 97, 5 + seed % 89)]
    cases = [
        (f"peephole_parameter_count({I}, {H}, full={full})", (I, H, full))
        for full in (False, True)
        for I, H in sizes
    ]
    return cases


def _peephole_count_mistakes() -> list:
    return [
        (
            "there are three peepholes (into i, f and o); the candidate g has none.",
            _peephole_count_variant(peepholes=4),
        ),
        (
            "you counted one bias per gate; the cell has two, bias_ih and bias_hh, like torch.nn.",
            _peephole_count_variant(biases=1),
        ),
        (
            "a diagonal peephole is a vector of H weights (one per cell), not an H x H matrix.",
            _peephole_count_variant(diagonal_as="H*H"),
        ),
        (
            "full peepholes are H x H matrices: 3 * H**2 weights in all, not 3 * H.",
            _peephole_count_variant(full_as="H"),
        ),
        (
            "count the whole cell: the LSTM's weights and biases plus the peepholes.",
            _peephole_count_variant(lstm=False),
        ),
    ]


PEEPHOLE_COUNT = register(
    Check(
        "check_peephole_count",
        "peephole_parameter_count",
        _peephole_count_cases,
        (
            Comparison(
                _peephole_count_reference,
                _peephole_count_mistakes,
                against="course_lib.cells.PeepholeLSTMCell's parameters",
            ),
        ),
        outputs=("count",),
    )
)


@keeps_rng
def check_peephole_count(peephole_parameter_count: Callable, seed: int = 0) -> None:
    """Test 4.2: ``peephole_parameter_count(input_size, hidden_size, full=False)`` for one cell."""
    run(PEEPHOLE_COUNT, peephole_parameter_count, seed)

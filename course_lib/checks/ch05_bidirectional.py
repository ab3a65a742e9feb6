"""Checks for chapter 05: reversing padded sequences, a bidirectional layer, its final states.

References: ``course_lib.layers.reverse_time`` and ``course_lib.layers.GRU(bidirectional=True)``
called with ``lengths``, itself tested against ``torch.nn.GRU`` on packed sequences. The inputs
carry random values (not zeros) in their padding, so that padding leaking anywhere shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from course_lib.checks.core import Case, Check, Comparison, keeps_rng, randn, register, run
from course_lib.layers import GRU, reverse_time


def _padded_cases(g: torch.Generator, F: int) -> list[Case]:
    """Sequences (T, B, F) with lengths; the padding holds random values, not zeros."""
    return [
        (
            f"lengths {tuple(lengths)} (T={T})",
            (randn(g, T, len(lengths), F), torch.tensor(lengths)),
        )
        for T, lengths in ((5, [5, 3, 1, 4]), (4, [4, 4]), (1, [1, 1, 1]), (6, [2]))
    ]


def _reverse_reference(x, lengths):
    return reverse_time(x, lengths)


def _zero_padding(x, lengths):
    return x * (torch.arange(x.shape[0]).unsqueeze(1) < lengths).unsqueeze(-1)


def _reverse_mistakes() -> list:
    return [
        (
            "you reversed over the whole padded length, so short sequences now start with padding. "
            "Reverse each sequence within its own length: step t of a length-L sequence goes to "
            "L - 1 - t, and the padding stays where it is.",
            lambda x, lengths: x.flip(0),
        ),
        ("you flipped the batch axis (dim 1); time is dim 0.", lambda x, lengths: x.flip(1)),
        (
            "you flipped the feature axis (the last one); time is dim 0.",
            lambda x, lengths: x.flip(-1),
        ),
        (
            "the real steps are right, but your padding changed: leave the steps past each length "
            "as they were.",
            lambda x, lengths: _zero_padding(reverse_time(x, lengths), lengths),
        ),
    ]


REVERSE_WITHIN_LENGTHS = register(
    Check(
        "check_reverse_within_lengths",
        "reverse_within_lengths",
        lambda seed: _padded_cases(torch.Generator().manual_seed(seed), 2),
        (
            Comparison(
                _reverse_reference, _reverse_mistakes, against="course_lib.layers.reverse_time"
            ),
        ),
        outputs=("reversed",),
    )
)


@keeps_rng
def check_reverse_within_lengths(reverse_within_lengths: Callable, seed: int = 0) -> None:
    """Test 5.1: ``reverse_within_lengths(x, lengths)``: reverse each sequence within its length."""
    run(REVERSE_WITHIN_LENGTHS, reverse_within_lengths, seed)


def _make_rnn(g: torch.Generator, I: int, H: int) -> nn.GRU:
    rnn = nn.GRU(I, H).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.copy_(randn(g, *p.shape, scale=0.5))
    return rnn


def _bidirectional_reference(x, lengths, forward_rnn, backward_rnn):
    layer = GRU(forward_rnn.input_size, forward_rnn.hidden_size, bidirectional=True).double()
    state = {}
    for suffix, rnn in (("_l0", forward_rnn), ("_l0_reverse", backward_rnn)):
        state.update(
            {
                f"{name}{suffix}": getattr(rnn, f"{name}_l0")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
        )
    layer.load_state_dict(state)
    return layer(x, lengths=lengths)[0]


def _bidirectional_variant(
    reverse="within", flip_back=True, forward_first=True, same=False, mask=True, combine="cat"
):
    """The exercise's function with the mistakes that the arguments switch on."""

    def run(x, lengths, forward_rnn, backward_rnn):
        turn = {
            "within": lambda s: reverse_time(s, lengths),
            "all": lambda s: s.flip(0),
            "none": lambda s: s,
        }[reverse]
        out_f = forward_rnn(x)[0]
        out_b = (forward_rnn if same else backward_rnn)(turn(x))[0]
        out_b = turn(out_b) if flip_back else out_b
        parts = (out_f, out_b) if forward_first else (out_b, out_f)
        out = torch.cat(parts, dim=-1) if combine == "cat" else parts[0] + parts[1]
        return _zero_padding(out, lengths) if mask else out

    return run


def _bidirectional_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    I, H = 2, 3
    forward_rnn, backward_rnn = _make_rnn(g, I, H), _make_rnn(g, I, H)
    return [(d, (*args, forward_rnn, backward_rnn)) for d, args in _padded_cases(g, I)]


def _bidirectional_mistakes() -> list:
    return [
        (
            "the backward direction's outputs are still in reversed order: turn them around again "
            "(within each length) before concatenating, so output[t] describes step t from both "
            "sides.",
            _bidirectional_variant(flip_back=False),
        ),
        (
            "you reversed over the padding, so for short sequences the backward RNN starts on "
            "padding. Reverse each sequence within its length (reverse_time(x, lengths)), both "
            "before and after.",
            _bidirectional_variant(reverse="all"),
        ),
        (
            "you reversed over the padding, so for short sequences the backward RNN starts on "
            "padding. Reverse each sequence within its length (reverse_time(x, lengths)), both "
            "before and after.",
            _bidirectional_variant(reverse="all", mask=False),
        ),
        (
            "the backward RNN read the sequence forwards: reverse each sequence before running it.",
            _bidirectional_variant(reverse="none"),
        ),
        (
            "forward first, then backward: torch.cat([forward, backward], dim=-1), as torch.nn "
            "does.",
            _bidirectional_variant(forward_first=False),
        ),
        (
            "both directions used forward_rnn; the backward direction has its own weights, "
            "backward_rnn.",
            _bidirectional_variant(same=True),
        ),
        (
            "your outputs at padded steps (past each length) are not zero: multiply by a (T, B, 1) "
            "mask that is 1 where t < lengths[b].",
            _bidirectional_variant(mask=False),
        ),
        (
            "you added the two directions; concatenate them along the last axis, "
            "giving (T, B, 2H).",
            _bidirectional_variant(combine="sum"),
        ),
    ]


BIDIRECTIONAL = register(
    Check(
        "check_bidirectional",
        "bidirectional",
        _bidirectional_cases,
        (
            Comparison(
                _bidirectional_reference,
                _bidirectional_mistakes,
                against="course_lib.layers.GRU(bidirectional=True) with lengths",
            ),
        ),
        outputs=("output",),
    )
)


@keeps_rng
def check_bidirectional(bidirectional: Callable, seed: int = 0) -> None:
    """Test 5.2: ``bidirectional(x, lengths, forward_rnn, backward_rnn) -> (T, B, 2H)``."""
    run(BIDIRECTIONAL, bidirectional, seed)


def _final_states_reference(output, lengths):
    H = output.shape[-1] // 2
    # The forward half at each sequence's last real step; the backward half ends at t = 0.
    last = output[lengths - 1, torch.arange(output.shape[1])]  # (B, 2H)
    return torch.cat([last[:, :H], output[0, :, H:]], dim=-1)


def _final_variant(forward_at="last", backward_at="first", swap=False):
    """The exercise's function with the mistakes that the arguments switch on."""

    def run(output, lengths):
        H, B = output.shape[-1] // 2, output.shape[1]
        at = {
            "last": output[lengths - 1, torch.arange(B)],
            "first": output[0],
            "end": output[-1],
            "length": output[lengths.clamp(max=output.shape[0] - 1), torch.arange(B)],
        }
        parts = (at[forward_at][:, :H], at[backward_at][:, H:])
        return torch.cat(parts[::-1] if swap else parts, dim=-1)

    return run


def _final_states_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    forward_rnn, backward_rnn = _make_rnn(g, 2, 3), _make_rnn(g, 2, 3)
    cases = []  # the outputs of a real bidirectional layer, zero at the padding
    for description, (x, lengths) in _padded_cases(g, 2):
        output = _bidirectional_reference(x, lengths, forward_rnn, backward_rnn).detach()
        cases.append((description, (output, lengths)))
    return cases


def _final_states_mistakes() -> list:
    return [
        (
            "output[-1] is the last padded step: for short sequences it is padding, and its "
            "backward half has read a single step. Take the forward half at step lengths - 1 and "
            "the backward half at step 0.",
            _final_variant("end", "end"),
        ),
        (
            "the forward half comes from output[-1], which is padding for short sequences; take it "
            "at each sequence's last real step, lengths[b] - 1.",
            _final_variant("end", "first"),
        ),
        (
            "the backward direction reads right to left, so it ends at step 0: take its half from "
            "output[0].",
            _final_variant("last", "last"),
        ),
        (
            "the forward half must come from each sequence's last real step, lengths[b] - 1, not "
            "step 0.",
            _final_variant("first", "first"),
        ),
        (
            "off by one: the last real step of a sequence of length L is L - 1.",
            _final_variant("length", "first"),
        ),
        (
            "the halves are swapped: forward first ([:, :H] at lengths - 1), "
            "then backward ([:, H:] at 0).",
            _final_variant(swap=True),
        ),
    ]


FINAL_STATES = register(
    Check(
        "check_final_states",
        "final_states",
        _final_states_cases,
        (
            Comparison(
                _final_states_reference,
                _final_states_mistakes,
                against="h_n of course_lib.layers.GRU(bidirectional=True)",
            ),
        ),
        outputs=("summary",),
    )
)


@keeps_rng
def check_final_states(final_states: Callable, seed: int = 0) -> None:
    """Test 5.3: ``final_states(output, lengths) -> (B, 2H)``, each direction's last real state."""
    run(FINAL_STATES, final_states, seed)

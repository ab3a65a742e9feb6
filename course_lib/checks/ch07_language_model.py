r"""Checks for chapter 07: the truncated-BPTT training loop, and sampling with a temperature.

``check_tbptt`` grades the training loop by what it does, not by how it is written: it builds a
tiny character model in float64 (an embedding, a tanh RNN or an LSTM, a linear head) and a tiny
corpus, lets the learner's ``train_tbptt`` train a copy of it with plain SGD, and compares the
loss of every segment with the reference loop's. The losses only agree when every step of the
loop is right: state carried from segment to segment and detached, gradients zeroed, clipped by
their norm between ``backward`` and ``step``, and the state reset when a new pass starts. Each
way of getting one of them wrong changes the losses in its own way, and the hint names it.

``check_temperature_softmax`` grades the distribution a sampler draws from,
``softmax(logits / temperature)`` over the last axis, on several temperatures, gradients
included; not sampled strings, which differ with every correct implementation.

==============================  =====================================================  =========
check                           the learner's function                                 exercise
==============================  =====================================================  =========
``check_tbptt``                 ``train_tbptt(model, data, seq_len, passes, lr, clip)``  7.1
``check_temperature_softmax``   ``temperature_softmax(logits, temperature) -> p``      7.2
==============================  =====================================================  =========
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks.core import Check, Comparison, keeps_rng, randn, register, run
from course_lib.text import CharVocab, Streams, segments, streams

# A tiny corpus that a small model learns within a few passes: short, with repeated words.
TINY_CORPUS = "the cat sat on the mat. the cat ate the rat. " * 4


class TinyCharModel(nn.Module):
    """ids (B, T) -> logits (B, T, V), state in and out: the lecture's CharModel, in miniature."""

    def __init__(self, layer: str, vocab_size: int, embedding: int = 6, hidden: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding, dtype=torch.float64)
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM}[layer]
        self.rnn = kind(embedding, hidden, batch_first=True, dtype=torch.float64)
        self.head = nn.Linear(hidden, vocab_size, dtype=torch.float64)

    def forward(self, ids, state=None):
        outputs, state = self.rnn(self.embed(ids), state)  # (B, T, H)
        return self.head(outputs), state  # (B, T, V)


def _tiny_model(layer: str, vocab_size: int, seed: int) -> TinyCharModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # inside fork_rng: the global state is restored afterwards
        return TinyCharModel(layer, vocab_size)


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _tbptt_variant(
    detach: bool = True,
    carry: bool = True,
    clip_where: str = "before_step",
    zero_grad: bool = True,
    reset_each_pass: bool = True,
    reduction: str = "mean",
):
    """The exercise's loop with the mistakes that the arguments switch on."""

    def train_tbptt(model, data, seq_len, passes, lr, clip):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        losses, state = [], None
        for _ in range(passes):
            if reset_each_pass:
                state = None
            for inputs, targets in segments(data, seq_len):
                logits, new_state = model(inputs, state)
                V = logits.shape[-1]
                loss = F.cross_entropy(
                    logits.reshape(-1, V), targets.reshape(-1), reduction=reduction
                )
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                if clip_where == "before_step":
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                elif clip_where == "value":
                    nn.utils.clip_grad_value_(model.parameters(), clip)
                optimizer.step()
                if clip_where == "after_step":
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                if not carry:
                    state = None
                else:
                    state = _detach(new_state) if detach else new_state
                losses.append(loss.item())
        return torch.tensor(losses, dtype=torch.float64)

    return train_tbptt


def _tbptt_reference(model, data, seq_len, passes, lr, clip):
    return _tbptt_variant()(model, data, seq_len, passes, lr, clip)


_NOT_DETACHED = (
    "the hidden state still carries the previous segment's graph, so backward() tried to go "
    "back into a segment it had already been through. Carry the state on detached: "
    "state = state.detach() (for the LSTM's (h, c), detach both)."
)


def _tbptt_mistakes() -> list:
    return [
        (
            "each segment starts from a zero state: the hidden state is not carried from one "
            "segment to the next. Keep the state the model returns and pass it (detached) to the "
            "next segment; reset it only when a new pass starts.",
            _tbptt_variant(carry=False),
        ),
        (
            "the optimizer stepped with unclipped gradients: the clipping is missing, or it comes "
            "after optimizer.step(), when the step has already been taken (clipping then changes "
            "nothing). Call torch.nn.utils.clip_grad_norm_(model.parameters(), clip) between "
            "loss.backward() and optimizer.step().",
            _tbptt_variant(clip_where="after_step"),
        ),
        (
            "the gradients were clipped element by element (clip_grad_value_); clip their norm "
            "instead, with clip_grad_norm_, which keeps the direction of the step.",
            _tbptt_variant(clip_where="value"),
        ),
        (
            "the gradients are never zeroed, so each step adds this segment's gradient to all the "
            "earlier ones. Call optimizer.zero_grad() before loss.backward().",
            _tbptt_variant(zero_grad=False),
        ),
        (
            "the state is not reset when a new pass starts: the end of a stream and its beginning "
            "are not neighbours in the text. Start each pass from state = None.",
            _tbptt_variant(reset_each_pass=False),
        ),
        (
            "the loss is summed over the characters; use the mean (F.cross_entropy's default), so "
            "that the learning rate does not depend on the batch and segment size.",
            _tbptt_variant(reduction="sum"),
        ),
    ]


def _tbptt_cases(seed: int) -> list:
    vocab = CharVocab.from_text(TINY_CORPUS)
    ids = vocab.encode(TINY_CORPUS)
    V = len(vocab)
    g = torch.Generator().manual_seed(seed)
    offset = int(torch.randint(0, 20, (1,), generator=g))  # where in the corpus the streams start
    cases: list[tuple] = []
    for description, layer, B, T, passes, lr, clip in (
        ("a tanh RNN, 4 streams, segments of 6, 2 passes", "rnn", 4, 6, 2, 0.5, 0.1),
        ("an LSTM, 3 streams, segments of 5, 2 passes", "lstm", 3, 5, 2, 1.0, 0.3),
        ("an LSTM, 2 streams, segments of 7, 3 passes", "lstm", 2, 7, 3, 2.0, 1.0),
    ):
        data = streams(ids[offset:], B)
        model = _tiny_model(layer, V, seed * 7 + len(cases))
        cases.append((description, (model, data, T, passes, lr, clip)))
    return cases


TBPTT = register(
    Check(
        "check_tbptt",
        "train_tbptt",
        _tbptt_cases,
        (Comparison(_tbptt_reference, _tbptt_mistakes, against="the reference training loop"),),
        outputs=("losses",),
        error_hints=(
            ("backward through the graph a second time", _NOT_DETACHED),
            ("inplace operation", _NOT_DETACHED),
        ),
    )
)


@keeps_rng
def check_tbptt(train_tbptt: Callable, seed: int = 0) -> None:
    """Test 7.1: ``train_tbptt(model, data, seq_len, passes, lr, clip) -> losses``."""
    run(TBPTT, train_tbptt, seed)


def tbptt_learns(train_tbptt: Callable, passes: int = 25, threshold: float = 1.2) -> float:
    """Train a tiny LSTM on :data:`TINY_CORPUS` with ``train_tbptt``; its last pass's mean loss.

    Raises an ``AssertionError`` unless that loss (nats per character) is below ``threshold``:
    a loop that is right learns this corpus within ``passes`` passes.
    """
    vocab = CharVocab.from_text(TINY_CORPUS)
    data = streams(vocab.encode(TINY_CORPUS), 4)
    model = _tiny_model("lstm", len(vocab), 0)
    seq_len = 8
    with torch.random.fork_rng(devices=[]):
        losses = torch.as_tensor(train_tbptt(model, data, seq_len, passes, 1.0, 1.0))
    per_pass = data.length // seq_len
    if losses.numel() != passes * per_pass:
        raise AssertionError(
            f"Not quite: `train_tbptt` returned {losses.numel()} losses for {passes} passes of "
            f"{per_pass} segments; return one loss per segment."
        )
    last = float(losses[-per_pass:].mean())
    if not last < threshold:
        raise AssertionError(
            f"Not quite: after {passes} passes over the tiny corpus the loss is {last:.3f} nats "
            f"per character; a working loop gets below {threshold} (uniform guessing: "
            f"{math.log(len(vocab)):.3f})."
        )
    return last


# --- 7.2: temperature ----------------------------------------------------------------------------


def _softmax_reference(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def _softmax_mistakes() -> list:
    return [
        (
            "the temperature was applied after the softmax (softmax(logits) / temperature): the "
            "result does not even sum to 1. Divide the logits first: softmax(logits / "
            "temperature).",
            lambda z, t: torch.softmax(z, dim=-1) / t,
        ),
        (
            "the probabilities were raised to the power 1 / temperature after the softmax and not "
            "renormalised, so they do not sum to 1. Divide the logits by the temperature before "
            "the softmax.",
            lambda z, t: torch.softmax(z, dim=-1) ** (1 / t),
        ),
        (
            "the logits were multiplied by the temperature; divide them: a temperature below 1 "
            "must sharpen the distribution.",
            lambda z, t: torch.softmax(z * t, dim=-1),
        ),
        (
            "the temperature is ignored: softmax(logits / temperature).",
            lambda z, t: torch.softmax(z, dim=-1),
        ),
        (
            "the softmax runs over the wrong axis; the characters are on the last one (dim=-1).",
            lambda z, t: torch.softmax(z / t, dim=0),
        ),
    ]


def _softmax_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for description, shape, temperature in (
        ("a batch of 3 over 7 characters, temperature 0.5", (3, 7), 0.5),
        ("a batch of 3 over 7 characters, temperature 1.5", (3, 7), 1.5),
        ("one row of 5 characters, temperature 1", (1, 5), 1.0),
        ("a batch of 4 over 4 characters, temperature 0.25", (4, 4), 0.25),
    ):
        cases.append((description, (randn(g, *shape, scale=2.0), temperature)))
    return cases


TEMPERATURE_SOFTMAX = register(
    Check(
        "check_temperature_softmax",
        "temperature_softmax",
        _softmax_cases,
        (
            Comparison(
                _softmax_reference,
                _softmax_mistakes,
                against="softmax(logits / temperature)",
                gradients=True,
            ),
        ),
        outputs=("p",),
    )
)


@keeps_rng
def check_temperature_softmax(temperature_softmax: Callable, seed: int = 0) -> None:
    """Test 7.2: ``temperature_softmax(logits, temperature) -> p``, over the last axis."""
    run(TEMPERATURE_SOFTMAX, temperature_softmax, seed)


__all__ = [
    "TINY_CORPUS",
    "Streams",
    "TinyCharModel",
    "check_tbptt",
    "check_temperature_softmax",
    "tbptt_learns",
]

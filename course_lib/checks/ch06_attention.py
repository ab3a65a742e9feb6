"""Checks for chapter 06: additive scores, the masked softmax, scaled dot-product attention.

References: ``course_lib.attention`` (``additive_scores``, ``dot_scores``, ``attend``). Every
batch mixes padded and unpadded examples, and one case has a single source position.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_lib import attention
from course_lib.checks.core import Case, Check, Comparison, keeps_rng, randn, register, run


def _additive_reference(query, keys, W_q, W_k, b, v):
    scores = attention.additive_scores(
        (query @ W_q.T).unsqueeze(1), keys @ W_k.T + b, v
    )  # (B, 1, S)
    return scores.squeeze(1)


def _additive_variant(squash="inside", bias=True, combine="add", reduce="v"):
    """The exercise's function with the mistakes that the arguments switch on."""

    def scores(query, keys, W_q, W_k, b, v):
        q, k = (
            (query @ W_q.T).unsqueeze(1),
            keys @ W_k.T + (b if bias else 0),
        )  # (B, 1, A), (B, S, A)
        energy = q + k if combine == "add" else q * k
        if squash == "outside":
            return torch.tanh(energy @ v)
        energy = {"inside": torch.tanh, "sigmoid": torch.sigmoid, "none": lambda e: e}[squash](
            energy
        )
        return energy @ v if reduce == "v" else energy.sum(-1)

    return scores


def _attention_cases(g: torch.Generator, Hq: int, Hk: int, Hv: int, extra: Callable) -> list[Case]:
    cases = []
    for description, B, S, lengths in (
        ("a batch of 3 with padding", 3, 5, [5, 2, 4]),
        ("a batch of 1 without padding", 1, 4, [4]),
        ("a single source position", 2, 1, [1, 1]),
    ):
        mask = torch.arange(S).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, S)
        cases.append(
            (description, extra(randn(g, B, Hq), randn(g, B, S, Hk), randn(g, B, S, Hv), mask))
        )
    return cases


def _additive_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    Hq, Hk, A = 3, 4, 5
    W = (randn(g, A, Hq), randn(g, A, Hk), randn(g, A), randn(g, A))
    cases = _attention_cases(g, Hq, Hk, 1, lambda q, k, v, m: (q, k, *W))
    return cases


def _additive_mistakes() -> list:
    return [
        ("the tanh is missing: e = v . tanh(W_q q + W_k k + b).", _additive_variant(squash="none")),
        (
            "the tanh goes inside: v . tanh(W_q q + W_k k + b), not tanh(v . (...)).",
            _additive_variant(squash="outside"),
        ),
        (
            "you squashed with the sigmoid; Bahdanau's score uses tanh.",
            _additive_variant(squash="sigmoid"),
        ),
        (
            "you summed the energy over its A units; project it with v instead (energy @ v).",
            _additive_variant(reduce="sum"),
        ),
        ("the bias b is missing: tanh(W_q q + W_k k + b).", _additive_variant(bias=False)),
        (
            "additive attention adds the projected query and key; you multiplied them.",
            _additive_variant(combine="mul"),
        ),
    ]


ADDITIVE_SCORES = register(
    Check(
        "check_additive_scores",
        "additive_scores",
        _additive_cases,
        (
            Comparison(
                _additive_reference,
                _additive_mistakes,
                against="course_lib.attention.additive_scores",
                gradients=True,
            ),
        ),
        outputs=("scores",),
    )
)


@keeps_rng
def check_additive_scores(additive_scores: Callable, seed: int = 0) -> None:
    """Test 6.1: ``additive_scores(query, keys, W_q, W_k, b, v) -> (B, S)``, Bahdanau's score."""
    run(ADDITIVE_SCORES, additive_scores, seed)


def _softmax_reference(scores, mask):
    _, weights = attention.attend(scores.unsqueeze(1), scores.new_zeros(*scores.shape, 1), mask)
    return weights.squeeze(1)


SOFTMAX_OVERFLOW = (
    "exp of a large score overflows: subtract each row's maximum before exp (a softmax is "
    "unchanged by a shift), or use torch.softmax"
)


def _softmax_cases(seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    cases = _attention_cases(g, 1, 1, 1, lambda q, k, v, m: (randn(g, *m.shape, scale=2.0), m))
    scores, mask = cases[0][1]
    cases.append(("large scores (around 1000)", (1000 * scores, mask)))
    return cases


def _softmax_mistakes() -> list:
    neg = float("-inf")
    return [
        (
            "padded positions got weight: the mask is ignored. Set their scores to -inf before the "
            "softmax, e.g. scores.masked_fill(~mask, float('-inf')).",
            lambda s, m: torch.softmax(s, dim=-1),
        ),
        (
            "your softmax normalises over the batch axis (dim 0); each example's weights must sum "
            "to 1 over its S positions: use dim=-1.",
            lambda s, m: torch.softmax(s.masked_fill(~m, neg), dim=0),
        ),
        (
            "you zeroed the padded weights after the softmax, so the real ones no longer sum to 1: "
            "mask the scores before the softmax.",
            lambda s, m: torch.softmax(s, dim=-1) * m,
        ),
        (
            "you set the padded scores to 0, which still gets weight e^0 = 1; use -inf.",
            lambda s, m: torch.softmax(s.masked_fill(~m, 0.0), dim=-1),
        ),
        (
            "your mask is inverted: True marks the real positions, False the padding.",
            lambda s, m: torch.softmax(s.masked_fill(m, neg), dim=-1),
        ),
    ]


MASKED_SOFTMAX = register(
    Check(
        "check_masked_softmax",
        "masked_softmax",
        _softmax_cases,
        (
            Comparison(
                _softmax_reference,
                _softmax_mistakes,
                against="torch.softmax with -inf at the padding",
                gradients=True,
                nan_hint=SOFTMAX_OVERFLOW,
            ),
        ),
        outputs=("weights",),
    )
)


@keeps_rng
def check_masked_softmax(masked_softmax: Callable, seed: int = 0) -> None:
    """Test 6.2: ``masked_softmax(scores, mask)``: a softmax over S, zero where mask is False."""
    run(MASKED_SOFTMAX, masked_softmax, seed)


def _dot_reference(query, keys, values, mask):
    context, weights = attention.attend(
        attention.dot_scores(query.unsqueeze(1), keys, scaled=True), values, mask
    )
    return context.squeeze(1), weights.squeeze(1)


def _dot_variant(scale="sqrt", masked=True, dim=-1, average="values", swap=False):
    """The exercise's function with the mistakes that the arguments switch on."""

    def run(query, keys, values, mask):
        d = query.shape[-1]
        scores = (keys @ query.unsqueeze(-1)).squeeze(-1) / {
            "sqrt": math.sqrt(d),
            "d": d,
            "none": 1,
        }[scale]
        weights = torch.softmax(
            scores.masked_fill(~mask, float("-inf")) if masked else scores, dim=dim
        )
        source = keys if average == "keys" else values
        context = source.mean(1) if average == "mean" else (weights.unsqueeze(-1) * source).sum(1)
        return (weights, context) if swap else (context, weights)

    return run


def _attention_mistakes() -> list:
    return [
        (
            "the scores are not scaled: divide q . k by sqrt(d), d being the query size.",
            _dot_variant(scale="none"),
        ),
        ("divide the scores by sqrt(d), not by d.", _dot_variant(scale="d")),
        (
            "padded positions got weight: set their scores to -inf before the softmax.",
            _dot_variant(masked=False),
        ),
        (
            "your softmax runs over the batch axis (dim 0); each example's weights sum to 1 over "
            "its source positions: dim=-1.",
            _dot_variant(dim=0),
        ),
        (
            "your context averages the keys; attention averages the values.",
            _dot_variant(average="keys"),
        ),
        (
            "your context is the plain mean of the values; weight each value by its attention "
            "weight.",
            _dot_variant(average="mean"),
        ),
        ("you returned (weights, context); return (context, weights).", _dot_variant(swap=True)),
    ]


ATTENTION = register(
    Check(
        "check_attention",
        "scaled_dot_attention",
        lambda seed: _attention_cases(
            torch.Generator().manual_seed(seed), 4, 4, 3, lambda q, k, v, m: (q, k, v, m)
        ),
        (
            Comparison(
                _dot_reference,
                _attention_mistakes,
                against="course_lib.attention (scaled dot-product)",
                gradients=True,
                nan_hint=SOFTMAX_OVERFLOW,
            ),
        ),
        outputs=("context", "weights"),
    )
)


@keeps_rng
def check_attention(scaled_dot_attention: Callable, seed: int = 0) -> None:
    """Test 6.3: ``scaled_dot_attention(query, keys, values, mask) -> (context, weights)``."""
    run(ATTENTION, scaled_dot_attention, seed)

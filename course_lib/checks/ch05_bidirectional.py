"""Checks for chapter 05: reversing padded sequences, a bidirectional layer, its final states.

References: ``course_lib.layers.reverse_time`` and ``course_lib.layers.GRU(bidirectional=True)``
called with ``lengths``, itself tested against ``torch.nn.GRU`` on packed sequences. The inputs
carry random values (not zeros) in their padding, so that padding leaking anywhere shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from course_lib.checks.core import (
    Case,
    Check,
    Comparison,
    collect,
    judge,
    keeps_rng,
    randn,
    register,
    run,
)
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


# --- 5.4, the module: two bidirectional layers with dropout between them ----------------------


class _Stack(nn.Module):
    """The exercise's module, and (with ``variant``) the usual ways to get it wrong."""

    def __init__(self, input_size, hidden_size, dropout, variant: str = "right") -> None:
        super().__init__()
        self.variant = variant
        first_hidden = input_size if variant == "first_size" else hidden_size
        second_input = input_size if variant == "unchained" else 2 * first_hidden
        self.first = GRU(input_size, first_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.second = GRU(second_input, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, x, lengths=None):
        v, given = self.variant, None if self.variant == "no_lengths" else lengths
        if v == "before":
            x = self.dropout(x)
        out, _ = self.first(x, lengths=given)
        if v in ("right", "first_size", "no_lengths"):
            out = self.dropout(out)
        elif v == "always":
            out = nn.functional.dropout(out, self.dropout.p, training=True)
        out, _ = self.second(x if v == "unchained" else out, lengths=given)
        return self.dropout(out) if v == "after" else out


def _stack_layers(model: nn.Module) -> list[GRU]:
    """The course_lib GRU layers of a module, in the order they were assigned."""
    layers = [m for m in model.modules() if isinstance(m, GRU)]
    if len(layers) != 2:
        raise ValueError(
            f"the module holds {len(layers)} course_lib.layers.GRU layers; build it from exactly "
            f"two, each GRU(..., batch_first=True, bidirectional=True) with one layer"
        )
    for name, layer in zip(("first", "second"), layers):
        if layer.num_layers != 1 or not layer.bidirectional or not layer.batch_first:
            raise ValueError(
                f"the {name} GRU has num_layers={layer.num_layers}, bidirectional="
                f"{layer.bidirectional}, batch_first={layer.batch_first}; each layer needs "
                f"num_layers=1, bidirectional=True and batch_first=True"
            )
    return layers


def _run_stack(factory, input_size, hidden_size, dropout, x, lengths):
    """Build the module, give its layers fixed weights, and run it in eval and in train mode."""
    if isinstance(factory, nn.Module):
        raise TypeError("pass the class itself (StackedBiGRU), not a module built from it")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = factory(input_size, hidden_size, dropout)
    if not isinstance(model, nn.Module):
        raise TypeError(f"StackedBiGRU(...) built a {type(model).__name__}, not an nn.Module")
    layers = _stack_layers(model)
    model = model.double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for layer in layers:  # the same weights for the learner's layers and the reference's
            for parameter in layer.parameters():
                parameter.copy_(
                    0.5 * torch.randn(parameter.shape, generator=g, dtype=torch.float64)
                )
    sizes = [float(n) for layer in layers for n in (layer.input_size, layer.hidden_size)]
    outputs = []
    for mode in ("eval", "train"):
        model.train(mode == "train")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)  # the same dropout masks when the dropout sits where it should
            outputs.append(model(x, lengths))
    return *outputs, sizes


def _stack_cases(seed: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for I, H, p, T, lengths in ((3, 4, 0.5, 5, [5, 3, 1]), (2, 3, 0.3, 4, [4, 2])):
        x = randn(g, len(lengths), T, I)  # (B, T, I); the padding holds random values
        description = f"input_size={I}, hidden_size={H}, dropout={p}, lengths {tuple(lengths)}"
        cases.append((description, (I, H, p, x, torch.tensor(lengths))))
    return cases


def _stack_variant(variant: str) -> Callable:
    def factory(input_size, hidden_size, dropout):
        return _Stack(input_size, hidden_size, dropout, variant)

    return factory


def _stack_mistakes() -> list:
    return [
        (
            "your module has no dropout in training mode: apply nn.Dropout(dropout) to the first "
            "layer's output, before the second layer reads it.",
            _stack_variant("none"),
        ),
        (
            "the dropout sits after the second layer; it belongs between the two layers, on "
            "what the first passes to the second.",
            _stack_variant("after"),
        ),
        (
            "the dropout is applied to the input x; it belongs between the two layers, on the "
            "first layer's output.",
            _stack_variant("before"),
        ),
        (
            "the second layer reads the input x, not the first layer's output: the layers are "
            "not chained. Its input size is 2 * hidden_size (both directions of the first).",
            _stack_variant("unchained"),
        ),
        (
            "your first layer has input_size hidden units; both layers have hidden_size, so the "
            "second reads 2 * hidden_size features.",
            _stack_variant("first_size"),
        ),
        (
            "your layers are not given lengths, so the backward directions read the padding "
            "first: pass lengths=lengths to both GRU calls.",
            _stack_variant("no_lengths"),
        ),
        (
            "your dropout is on in eval mode too: use nn.Dropout (a module, which model.eval() "
            "switches off) or F.dropout(..., training=self.training).",
            _stack_variant("always"),
        ),
    ]


STACKED_BIGRU = register(
    Check(
        "check_stacked_bigru",
        "StackedBiGRU",
        _stack_cases,
        (
            Comparison(
                _stack_variant("right"),
                _stack_mistakes,
                against="two bidirectional course_lib GRUs with nn.Dropout between them",
                gradients=False,
            ),
        ),
        outputs=("output in eval mode", "output in train mode", "layer sizes"),
        adapt=lambda factory: lambda *args: _run_stack(factory, *args),
    )
)


@keeps_rng
def check_stacked_bigru(StackedBiGRU: type, seed: int = 0) -> None:
    """``StackedBiGRU(input_size, hidden_size, dropout)``, ``forward(x, lengths)`` (part of 5.4)."""
    run(STACKED_BIGRU, StackedBiGRU, seed)


# --- 5.4, the experiment: a tagger with that stack, graded by its result ----------------------

TAGGER_ACCURACY = 0.95  # on the check's own validation questions
TAGGER_MAX_PARAMETERS = 40_000


def _tagging_cases(seed: int) -> list[Case]:
    # Built on demand: the check trains on the same data whatever the seed (the one the notebook
    # promises); the seed picks the held-out validation questions.
    return [("future_context(shift=2), lengths 10-20", (seed,))]


def _score_tagger(train_tagger, seed):
    """Train the learner's tagger with its own function; score it on fresh questions."""
    from course_lib.tasks import future_context
    from course_lib.training import evaluate

    if getattr(train_tagger, "_reference", False):
        return train_tagger(seed)
    train = future_context(2000, (10, 20), shift=2, seed=0)
    valid = future_context(500, (10, 20), shift=2, seed=1000 + seed)
    model = train_tagger(train)
    if not isinstance(model, nn.Module):
        raise TypeError(f"train_tagger returned {type(model).__name__}; return the trained model")
    stacks = [m for m in model.modules() if sum(isinstance(n, GRU) for n in m.children()) == 2]
    if not stacks or not any(isinstance(m, nn.Dropout) and m.p > 0 for m in stacks[0].modules()):
        raise ValueError(
            "the model needs your StackedBiGRU inside it: two course_lib GRU layers in one "
            "module, with an nn.Dropout (p > 0) between them"
        )
    stack_class = type(stacks[0])  # the learner's StackedBiGRU: checked on its own first
    verdict = judge(STACKED_BIGRU, collect(STACKED_BIGRU, stack_class, seed), seed)
    if not verdict.passed:
        raise ValueError(f"your {stack_class.__name__} is not right yet. {verdict.message}")
    count = sum(p.numel() for p in model.parameters())
    if count > TAGGER_MAX_PARAMETERS:
        raise ValueError(
            f"the model has {count} parameters; stay within {TAGGER_MAX_PARAMETERS} "
            f"(a smaller hidden_size or embedding)"
        )
    accuracy = evaluate(model, valid)
    if accuracy < TAGGER_ACCURACY:
        raise ValueError(
            f"your tagger tags {accuracy:.1%} of the held-out steps right; it must reach "
            f"{TAGGER_ACCURACY:.0%}. Train for more steps, raise the learning rate (1e-2 works "
            f"with Adam here) or lower the dropout; check that the model is given the lengths"
        )
    return 1.0


def _tagger_reference(seed):
    return 1.0  # reached the stated accuracy


_tagger_reference._reference = True  # type: ignore[attr-defined]

TRAINED_TAGGER = register(
    Check(
        "check_trained_tagger",
        "train_tagger",
        _tagging_cases,
        (Comparison(_tagger_reference, against=f"the target accuracy {TAGGER_ACCURACY:.0%}"),),
        outputs=("reached",),
        adapt=lambda train_tagger: lambda seed: _score_tagger(train_tagger, seed),
    )
)


@keeps_rng
def check_trained_tagger(train_tagger: Callable, seed: int = 0) -> None:
    """Test 5.4: ``train_tagger(train)`` returns a tagger that reaches 95% on held-out data.

    The tagger's stack (the module with two course_lib GRU children) is first graded on its own
    by :data:`STACKED_BIGRU`, so a misplaced dropout gets its hint before any accuracy does.
    """
    run(TRAINED_TAGGER, train_tagger, seed)

"""Chapter 07's checks: the solution passes, and each plausible mistake fails with its own hint.

The wrong answers are written here as a learner would write them (not with the checks' own
mistake variants), so the test catches a check whose variants drift from real code.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks import ch07_language_model as ch07
from course_lib.checks.core import CHECKS
from course_lib.text import segments

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "07_language_model.ipynb"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: a second thread only adds contention
    yield
    torch.set_num_threads(threads)


def _detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def loop(*, detach=True, carry=True, clip="norm_before", zero=True, reset=True, retain=False):
    """A learner's train_tbptt, with one step changed."""

    def train_tbptt(model, data, seq_len, passes, lr, clip_value):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        losses, state = [], None
        for _ in range(passes):
            if reset:
                state = None
            for inputs, targets in segments(data, seq_len):
                logits, new_state = model(inputs, state if carry else None)
                loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
                if zero:
                    optimizer.zero_grad()
                loss.backward(retain_graph=retain)
                if clip == "norm_before":
                    nn.utils.clip_grad_norm_(model.parameters(), clip_value)
                elif clip == "value":
                    nn.utils.clip_grad_value_(model.parameters(), clip_value)
                optimizer.step()
                if clip == "norm_after":
                    nn.utils.clip_grad_norm_(model.parameters(), clip_value)
                state = _detach(new_state) if detach else new_state
                losses.append(loss.item())
        return losses  # a list of floats is accepted as well as a tensor

    return train_tbptt


WRONG_TBPTT = [
    ("hidden state not detached", loop(detach=False), "detach"),
    ("not detached, retain_graph=True", loop(detach=False, retain=True), "detach"),
    ("state not carried", loop(carry=False), "not carried"),
    ("clipping after the step", loop(clip="norm_after"), "after optimizer.step()"),
    ("no clipping", loop(clip="none"), "unclipped gradients"),
    ("clipping by value", loop(clip="value"), "element by element"),
    ("gradients never zeroed", loop(zero=False), "never zeroed"),
    ("state not reset between passes", loop(reset=False), "not reset when a new pass"),
]

WRONG_TEMPERATURE = [
    (
        "temperature after the softmax",
        lambda z, t: torch.softmax(z, dim=-1) / t,
        "after the softmax",
    ),
    (
        "power after the softmax, not renormalised",
        lambda z, t: torch.softmax(z, dim=-1) ** (1 / t),
        "not renormalised",
    ),
    ("multiplied by the temperature", lambda z, t: F.softmax(z * t, dim=-1), "multiplied"),
    ("temperature ignored", lambda z, t: F.softmax(z, dim=-1), "ignored"),
    ("softmax over the batch", lambda z, t: F.softmax(z / t, dim=0), "wrong axis"),
]


def right_tbptt():
    return loop()


@pytest.mark.parametrize(("name", "wrong", "hint"), WRONG_TBPTT, ids=[w[0] for w in WRONG_TBPTT])
def test_tbptt_mistake_gets_its_hint(name, wrong, hint):
    with pytest.raises(AssertionError, match="Not quite") as caught:
        ch07.check_tbptt(wrong)
    assert hint in str(caught.value), f"{name}: {caught.value}"


@pytest.mark.parametrize(
    ("name", "wrong", "hint"), WRONG_TEMPERATURE, ids=[w[0] for w in WRONG_TEMPERATURE]
)
def test_temperature_mistake_gets_its_hint(name, wrong, hint):
    with pytest.raises(AssertionError, match="Not quite") as caught:
        ch07.check_temperature_softmax(wrong)
    assert hint in str(caught.value), f"{name}: {caught.value}"


def test_right_answers_pass_and_learn(capsys):
    ch07.check_tbptt(right_tbptt(), seed=3)
    ch07.check_temperature_softmax(lambda z, t: torch.softmax(z / t, dim=-1), seed=3)
    assert capsys.readouterr().out.count("✓") == 2
    assert ch07.tbptt_learns(right_tbptt()) < 1.2


def test_a_broken_loop_does_not_learn():
    def no_step(model, data, seq_len, passes, lr, clip):  # forgets optimizer.step()
        losses = []
        for _ in range(passes):
            for inputs, targets in segments(data, seq_len):
                logits, _ = model(inputs)
                losses.append(F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item())
        return losses

    with pytest.raises(AssertionError, match="a working loop gets below"):
        ch07.tbptt_learns(no_step)
    with pytest.raises(AssertionError, match="one loss per segment"):
        ch07.tbptt_learns(lambda *args: [0.0])


def test_blank_exercise_raises_not_implemented():
    def blank(*args):
        raise NotImplementedError()

    for check in (ch07.check_tbptt, ch07.check_temperature_softmax):
        with pytest.raises(NotImplementedError):
            check(blank)


def test_checks_keep_the_global_random_state():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    ch07.check_tbptt(right_tbptt())
    ch07.check_temperature_softmax(lambda z, t: torch.softmax(z / t, dim=-1))
    assert torch.equal(torch.rand(3), expected)


def test_checks_are_registered_for_the_grader():
    assert CHECKS["check_tbptt"] is ch07.TBPTT
    assert CHECKS["check_temperature_softmax"] is ch07.TEMPERATURE_SOFTMAX


def test_the_solution_notebook_passes_its_own_checks(capsys):
    namespace: dict = {}
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, str(SOLUTION), "exec"), namespace)
    assert capsys.readouterr().out.count("✓") == 4  # two checks per test cell, hidden included

"""course_lib.checks: right answers pass its checks, wrong ones fail with the right hint.

The right answers are the solution notebooks' own code: every code cell that is not a test cell
is executed (imports, then each exercise's complete function), and each test cell's first call,
``check_x(function)``, says which check grades which function. The wrong answers are in
``wrong_implementations.py``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from wrong_implementations import WRONG

from course_lib import checks as grading
from course_lib.checks import ch01_rnn, ch05_bidirectional

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
CHECK_CALL = re.compile(r"^(check_\w+)\((\w+)\)\s*$", re.MULTILINE)


def exercise_id(cell) -> str | None:
    tags = cell.get("metadata", {}).get("tags", [])
    return next((t.removeprefix("exercise:") for t in tags if t.startswith("exercise:")), None)


@functools.cache
def exercises() -> dict[str, tuple]:
    """exercise id -> (check function, the solution's function, notebook name)."""
    found = {}
    for path in SOLUTIONS:
        notebook = nbformat.read(path, as_version=4)
        namespace: dict = {}
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            exercise = exercise_id(cell)
            if exercise is None:
                exec(compile(cell.source, str(path), "exec"), namespace)
                continue
            match = CHECK_CALL.search(cell.source)
            assert match, f"{path.name}: the test cell of {exercise} calls no check_x(function)"
            check, function = match.groups()
            found[exercise] = (getattr(grading, check), namespace[function], path.name)
    return found


EXERCISE_IDS = sorted(WRONG)
CASES = [
    pytest.param(exercise, index, hint, id=f"{exercise}-{index}")
    for exercise in EXERCISE_IDS
    for index, (_, hint) in enumerate(WRONG[exercise])
]


def test_every_exercise_has_wrong_implementations():
    assert set(exercises()) == set(WRONG), (
        f"exercises without wrong implementations: {sorted(set(exercises()) - set(WRONG))}; "
        f"wrong implementations for unknown exercises: {sorted(set(WRONG) - set(exercises()))}"
    )
    few = {exercise: len(WRONG[exercise]) for exercise in WRONG if len(WRONG[exercise]) < 3}
    assert not few, f"fewer than three wrong implementations: {few}"


@pytest.mark.parametrize("exercise", EXERCISE_IDS)
def test_solution_passes(exercise, capsys):
    check, solution, _ = exercises()[exercise]
    check(solution)
    check(solution, seed=7)
    assert capsys.readouterr().out.startswith("✓"), "a passing check prints one line starting ✓"


@pytest.mark.parametrize("exercise, index, hint", CASES)
def test_wrong_implementation_gets_its_hint(exercise, index, hint):
    check, _, _ = exercises()[exercise]
    function = WRONG[exercise][index][0]
    with pytest.raises(AssertionError) as failure:
        check(function)
    message = str(failure.value)
    assert hint in message, f"expected the hint {hint!r}, got:\n{message}"
    assert message.startswith("Not quite"), message


@pytest.mark.parametrize("exercise", EXERCISE_IDS)
def test_blank_exercise_raises_not_implemented(exercise):
    """The notebook contract: a blank exercise fails its test cell with NotImplementedError."""
    check, _, _ = exercises()[exercise]

    def blank(*args, **kwargs):
        # YOUR CODE HERE
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check(blank)


def test_errors_from_learner_code_keep_their_traceback():
    check, _, _ = exercises()["rnn_step"]

    def broken(x, h_prev, W_ih, W_hh, b):
        return np.tanh(x @ W_ih + h_prev @ W_hh.T + b)

    with pytest.raises(AssertionError) as failure:
        check(broken)
    assert isinstance(failure.value.__cause__, ValueError)
    assert "x: array (3, 3) float64" in str(failure.value)  # the inputs are described


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for check, solution, _ in exercises().values():
        check(solution)
    assert torch.equal(torch.get_rng_state(), before)


def test_passing_the_result_instead_of_the_function():
    with pytest.raises(AssertionError, match="pass the function itself"):
        grading.check_rnn_step(np.zeros((3, 4)))


def test_final_states_reference_is_the_layer_h_n():
    """The reference of check_final_states picks exactly what the layer returns as h_n."""
    torch.manual_seed(0)
    layer = ch05_bidirectional.GRU(2, 3, bidirectional=True).double()
    x, lengths = torch.randn(5, 4, 2, dtype=torch.float64), torch.tensor([5, 3, 1, 4])
    output, h_n = layer(x, lengths=lengths)
    expected = torch.cat([h_n[0], h_n[1]], dim=-1)
    torch.testing.assert_close(
        ch05_bidirectional._final_states_reference(output, lengths), expected
    )


def test_numerical_gradient_agrees_with_autograd():
    g = torch.Generator().manual_seed(0)
    xs, h0, dhs = (
        torch.randn(*s, generator=g, dtype=torch.float64).numpy()
        for s in ((3, 2, 2), (2, 3), (3, 2, 3))
    )
    W = ch01_rnn._rnn_weights(g, 2, 3)
    hs = ch01_rnn._forward_reference(xs, h0, *W)
    autograd = ch01_rnn._bptt_reference(xs, h0, hs, *W, dhs)
    numerical = ch01_rnn._numerical_gradient(xs, h0, *W, dhs)
    for key in ch01_rnn.GRAD_KEYS:
        np.testing.assert_allclose(numerical[key], autograd[key], atol=1e-7)


def test_lstm_layer_reference_is_the_course_layer_with_lengths():
    """The reference of check_lstm_layer is what course_lib.layers.LSTM computes with lengths."""
    from course_lib.checks import ch02_lstm
    from course_lib.layers import LSTM

    torch.manual_seed(0)
    layer = LSTM(3, 4).double()
    xs, lengths = torch.randn(5, 3, 3, dtype=torch.float64), torch.tensor([5, 2, 1])
    output, (h_n, c_n) = layer(xs, lengths=lengths)
    weights = [
        getattr(layer, n) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    ]
    ours = ch02_lstm._layer_reference(xs, lengths, *weights)
    for got, want in zip(ours, (output, h_n[0], c_n[0])):
        torch.testing.assert_close(got, want)

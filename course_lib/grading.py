r"""The checks that the exercise notebooks' test cells call, with hints that name the likely bug.

Each ``check_*`` function runs a learner's function on a few small inputs in float64 (a random
batch, a batch of one, a zero state, a single time step, ...) and compares the result with a
reference: PyTorch's own kernels (``torch.lstm_cell`` is what ``torch.nn.LSTMCell`` calls),
torch autograd, or course_lib's implementation, itself tested against ``torch.nn``. Where it
matters, the gradients are compared too.

When an answer is off, the check computes a handful of *known mistakes* on the same input: tanh
instead of the sigmoid on a gate, the gates sliced in the wrong order, no forget gate, the GRU's
reset gate before the matrix, a sequence reversed over its padding, a softmax over the wrong
axis, ... If the learner's output equals one of them, the ``AssertionError`` names that mistake
and how to fix it. Otherwise it says where the largest difference is, with the shapes.

The contract with the exercise notebooks (see ``course_lib.exercises``):

* a ``NotImplementedError`` from the learner's function (a blank exercise) propagates unchanged;
* any other exception from it becomes an ``AssertionError`` that names the input it was given,
  chained to the original exception so its traceback stays visible;
* a check never changes the global random state, and prints one line when it passes.

Every check takes ``seed``, so a hidden test can run it again on other random inputs.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from course_lib import attention
from course_lib.cells import PeepholeLSTMCell, peephole_pointwise
from course_lib.layers import GRU, reverse_time

Case = tuple[str, tuple]  # a description ("a batch of 3") and the arguments to call with
Mistake = tuple[str, Callable]  # a hint and a function that makes exactly that mistake

# ---------------------------------------------------------------------------------------------
# The machinery shared by all checks
# ---------------------------------------------------------------------------------------------

_ERROR_HINTS = [
    (
        "in-place operation",
        "Your function changes a tensor in place (x[...] = ..., +=, .fill_()) that autograd needs; "
        "build a new tensor instead (torch.where, masked_fill, torch.cat).",
    ),
]


def _keeps_rng(check: Callable) -> Callable:
    """Run a check without touching the learner's global random state."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return wrapper


def _describe(value: object) -> str:
    if isinstance(value, Tensor | np.ndarray):
        kind = "tensor" if isinstance(value, Tensor) else "array"
        return f"{kind} {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, nn.Module):
        return repr(value).split("\n")[0]
    return type(value).__name__ if isinstance(value, tuple | list | dict) else repr(value)


def _call(fn: Callable, name: str, args: tuple, arg_names: list, case: str, error_hints: Sequence):
    """Call the learner's function; turn its errors (except NotImplementedError) into hints."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise  # a blank exercise: the notebook contract relies on this very exception
    except Exception as error:
        inputs = ", ".join(f"{n}: {_describe(a)}" for n, a in zip(arg_names, args))
        hint = next((h for text, h in error_hints if text in str(error)), "")
        raise AssertionError(
            f"Not quite: on {case}, `{name}` raised {type(error).__name__}: {error}\n"
            f"It was called with {inputs}. {hint}".rstrip()
        ) from error


def _to_array(value: object, name: str, fn_name: str, learner: bool) -> np.ndarray:
    if learner:
        dtype = value.dtype if isinstance(value, Tensor | np.ndarray) else None
        if dtype in (torch.float32, torch.float16, torch.bfloat16, np.float32, np.float16):
            raise AssertionError(
                f"Not quite: `{fn_name}` returns `{name}` as {dtype}, but the check gives it "
                f"float64 inputs. Create new tensors with the inputs' dtype (torch.zeros_like(x) "
                f"or dtype=x.dtype) instead of the default float32."
            )
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"`{fn_name}` returns `{name}` as {_describe(value)}") from error


def _outputs(value: object, names: tuple, fn_name: str, as_dict: bool, learner: bool) -> dict:
    """The outputs as {name: float64 array}, after checking the learner's structure."""
    if learner and value is None:
        raise AssertionError(f"Not quite: `{fn_name}` returned None. Did you forget `return`?")
    if as_dict:
        if not isinstance(value, dict):
            raise AssertionError(f"`{fn_name}` should return a dict with keys {list(names)}")
        missing = [key for key in names if key not in value]
        if missing:
            raise AssertionError(f"`{fn_name}`'s dict lacks the keys {missing}; it needs {list(names)}")
        items = [value[key] for key in names]
    elif len(names) > 1:
        if not isinstance(value, tuple | list) or len(value) != len(names):
            raise AssertionError(
                f"`{fn_name}` should return a tuple ({', '.join(names)}), got {_describe(value)}"
            )
        items = list(value)
    else:
        items = [value]
    return {n: _to_array(v, n, fn_name, learner) for n, v in zip(names, items)}


def _difference(got: dict, expected: dict) -> str | None:
    """Where ``got`` first differs from ``expected`` (None: they agree to float64 precision)."""
    for name, want in expected.items():
        have = got[name]
        if have.shape != want.shape:
            return f"`{name}` has shape {have.shape}, expected {want.shape}"
        if np.allclose(have, want, rtol=1e-6, atol=1e-8):
            continue
        if not np.isfinite(have).all() and np.isfinite(want).all():
            return f"`{name}` contains nan or inf where the reference is finite"
        error = np.where(np.isfinite(have), np.abs(have - want), np.inf)
        where = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
        at = f" at index {tuple(int(i) for i in where)}" if where else ""
        return (
            f"`{name}` differs by up to {error[where]:.3g}{at} "
            f"(yours {have[where]:.6g}, expected {want[where]:.6g}; shape {want.shape})"
        )
    return None


def _same(a: dict, b: dict) -> bool:
    return all(
        a[n].shape == b[n].shape and np.allclose(a[n], b[n], rtol=1e-6, atol=1e-8, equal_nan=True)
        for n in b
    )


def _changed(before: tuple, after: tuple) -> str | None:
    """The name of an array argument that the learner's function modified, if any."""
    for index, (old, new) in enumerate(zip(before, after)):
        if isinstance(old, Tensor | np.ndarray) and not np.array_equal(
            _to_array(old, "", "", False), _to_array(new, "", "", False), equal_nan=True
        ):
            return str(index)
    return None


def _gradients(fn: Callable, args: tuple, probes: list, names: list) -> dict | None:
    """d(sum of outputs * probes)/d(each float tensor argument), or None when nothing flows."""
    leaves = [
        a.detach().clone().requires_grad_(True)
        if isinstance(a, Tensor) and a.is_floating_point()
        else a
        for a in args
    ]
    out = fn(*leaves)
    out = list(out.values()) if isinstance(out, dict) else out
    out = out if isinstance(out, tuple | list) else (out,)
    total = sum((o * p).sum() for o, p in zip(out, probes))
    if not isinstance(total, Tensor) or not total.requires_grad:
        return None
    wanted = [(n, a) for n, a in zip(names, leaves) if isinstance(a, Tensor) and a.requires_grad]
    grads = torch.autograd.grad(total, [a for _, a in wanted], allow_unused=True)
    return {n: (torch.zeros_like(a) if g is None else g).numpy() for (n, a), g in zip(wanted, grads)}


def _check(
    fn: Callable,
    name: str,
    reference: Callable,
    cases: list[Case],
    mistakes: Sequence[Mistake] = (),
    outputs: tuple = ("output",),
    *,
    against: str = "the reference",
    as_dict: bool = False,
    gradients: bool = False,
    nan_hint: str = "",
    error_hints: Sequence = tuple(_ERROR_HINTS),
) -> None:
    """Compare ``fn`` with ``reference`` on every case; on a difference, look for a known mistake."""
    if not callable(fn):
        raise AssertionError(f"Pass the function itself, `{name}`, not {_describe(fn)}")
    arg_names = list(inspect.signature(reference).parameters)
    for case, args in cases:
        expected = _outputs(reference(*copy.deepcopy(args)), outputs, name, as_dict, False)
        call_args = copy.deepcopy(args)
        raw = _call(fn, name, call_args, arg_names, case, error_hints)
        got = _outputs(raw, outputs, name, as_dict, True)
        changed = _changed(args, call_args)
        if changed is not None:
            raise AssertionError(
                f"Not quite: on {case}, `{name}` modified its input `{arg_names[int(changed)]}` in "
                f"place. Leave the inputs as they are and build new arrays for the results."
            )
        problem = _difference(got, expected)
        if problem is None:
            if gradients:
                _compare_gradients(fn, name, reference, args, expected, arg_names, case)
            continue
        for hint, wrong in mistakes:
            try:
                candidate = _outputs(wrong(*copy.deepcopy(args)), outputs, name, as_dict, False)
            except Exception:  # a mistake that cannot even run on this input is not this one
                continue
            if _same(got, candidate):
                raise AssertionError(f"Not quite: on {case}, {hint}")
        if "nan or inf" in problem and nan_hint:
            problem += f". {nan_hint}"
        raise AssertionError(
            f"Not quite: on {case}, `{name}` differs from {against}: {problem}. "
            f"It matches none of the usual mistakes, so go through the equations one term at a "
            f"time and print the shapes of the intermediate results."
        )
    extra = " (gradients included)" if gradients else ""
    print(f"✓ `{name}` agrees with {against}{extra} on {'; '.join(c for c, _ in cases)}.")


def _compare_gradients(fn, name, reference, args, expected, arg_names, case) -> None:
    generator = torch.Generator().manual_seed(1234)
    probes = [torch.randn(v.shape, generator=generator, dtype=torch.float64) for v in expected.values()]
    want = _gradients(reference, args, probes, arg_names)
    learner = functools.partial(_gradients, fn, probes=probes, names=arg_names)
    have = _call(lambda *a: learner(a), name, args, arg_names, case, _ERROR_HINTS)
    if have is None:
        raise AssertionError(
            f"Not quite: on {case}, `{name}` computes the right values but no gradient flows "
            f"back through it. Avoid .detach(), .numpy(), .item() and torch.tensor(...) on "
            f"intermediate results: stay with torch operations from inputs to outputs."
        )
    for arg, grad in want.items():
        problem = _difference({arg: have[arg]}, {arg: grad})
        if problem:
            raise AssertionError(
                f"Not quite: on {case}, `{name}`'s values are right but the gradient with respect "
                f"to `{arg}` differs ({problem.split(' ', 1)[1]}). Did you detach part of the "
                f"computation or change a tensor in place?"
            )


def _randn(generator: torch.Generator, *shape: int, scale: float = 1.0) -> Tensor:
    return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# Chapter 01: the tanh RNN in NumPy
# ---------------------------------------------------------------------------------------------


def _rnn_reference(x, h_prev, W_ih, W_hh, b):
    t = torch.from_numpy
    return torch.rnn_tanh_cell(t(x), t(h_prev), t(W_ih), t(W_hh), t(b), t(np.zeros_like(b))).numpy()


def _rnn_variant(squash=np.tanh, transpose=True, recurrent=True, bias=True):
    def step(x, h_prev, W_ih, W_hh, b):
        pre = x @ W_ih.T + (h_prev @ (W_hh.T if transpose else W_hh) if recurrent else 0)
        return squash(pre + (b if bias else 0))

    return step


def _rnn_weights(g: torch.Generator, I: int, H: int) -> tuple:
    return tuple(_randn(g, *s, scale=0.5).numpy() for s in ((H, I), (H, H), (H,)))


@_keeps_rng
def check_rnn_step(rnn_step: Callable, seed: int = 0) -> None:
    """Test 1.1: ``rnn_step(x, h_prev, W_ih, W_hh, b) -> h`` in NumPy."""
    g = torch.Generator().manual_seed(seed)
    I, H = 3, 4
    W = _rnn_weights(g, I, H)
    cases = [
        ("a batch of 3", (_randn(g, 3, I).numpy(), _randn(g, 3, H).numpy(), *W)),
        ("a batch of 1", (_randn(g, 1, I).numpy(), _randn(g, 1, H).numpy(), *W)),
        ("a zero initial state", (_randn(g, 2, I).numpy(), np.zeros((2, H)), *W)),
    ]
    mistakes = [
        ("your new state is squashed with the sigmoid; the tanh RNN uses np.tanh, whose outputs "
         "lie in (-1, 1) and are centred on 0.", _rnn_variant(squash=lambda a: 1 / (1 + np.exp(-a)))),
        ("your new state is not squashed: apply np.tanh to the whole sum.", _rnn_variant(squash=lambda a: a)),
        ("you multiplied h_prev by W_hh instead of its transpose. Each row of W_hh belongs to one "
         "hidden unit, so for a batch of row vectors write h_prev @ W_hh.T.", _rnn_variant(transpose=False)),
        ("your new state ignores h_prev: the recurrence needs the term h_prev @ W_hh.T.", _rnn_variant(recurrent=False)),
        ("the bias b is missing from the sum.", _rnn_variant(bias=False)),
    ]
    _check(rnn_step, "rnn_step", _rnn_reference, cases, mistakes, against="torch.nn.RNNCell")


def _forward_reference(xs, h0, W_ih, W_hh, b):
    states, h = [], h0
    for x in xs:
        h = _rnn_reference(x, h, W_ih, W_hh, b)
        states.append(h)
    return np.stack(states)


def _forward_variant(kind: str):
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


@_keeps_rng
def check_rnn_forward(rnn_forward: Callable, seed: int = 0) -> None:
    """Test 1.2: ``rnn_forward(xs, h0, W_ih, W_hh, b) -> hs``, all T states, (T, B, H)."""
    g = torch.Generator().manual_seed(seed)
    I, H = 3, 4
    W = _rnn_weights(g, I, H)
    cases = [
        (f"a sequence of {T} steps and a batch of {B}", (_randn(g, T, B, I).numpy(), _randn(g, B, H).numpy(), *W))
        for T, B in ((5, 3), (1, 2), (4, 1))
    ]
    mistakes = [
        ("you returned only the last state; return all T states stacked into one array of "
         "shape (T, B, H), e.g. with np.stack.", _forward_variant("last")),
        ("your states include h0: return h_1 ... h_T, one per input step.", _forward_variant("with_h0")),
        ("your states are shifted by one step: hs[t] must be the state after reading xs[t] "
         "(h_1 first), not the state before it.", _forward_variant("shifted")),
        ("every step starts again from h0: feed each new state back in as h_prev of the next "
         "step.", _forward_variant("no_carry")),
        ("you read the sequence backwards: start at xs[0].", _forward_variant("reversed")),
    ]
    _check(rnn_forward, "rnn_forward", _forward_reference, cases, mistakes, against="torch.nn.RNNCell, step by step")


GRAD_KEYS = ("W_ih", "W_hh", "b", "h0")


def _loss(xs, h0, W_ih, W_hh, b, dhs) -> float:
    """The loss whose gradient rnn_backward computes: sum over t of dhs[t] * h_t."""
    return float((_forward_reference(xs, h0, W_ih, W_hh, b) * dhs).sum())


def _bptt_reference(xs, h0, hs, W_ih, W_hh, b, dhs):
    params = {k: torch.tensor(v, requires_grad=True) for k, v in zip(GRAD_KEYS, (W_ih, W_hh, b, h0))}
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


def _bptt_variant(recurrent=True, local="h", carry_T=False, dW_hh_with="prev", forward=False, sum_b=True):
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


@_keeps_rng
def check_rnn_backward(rnn_backward: Callable, seed: int = 0) -> None:
    """Test 1.3: ``rnn_backward(xs, h0, hs, W_ih, W_hh, b, dhs) -> {"W_ih", "W_hh", "b", "h0"}``."""
    g = torch.Generator().manual_seed(seed)
    I, H = 2, 3
    W = _rnn_weights(g, I, H)
    cases = []
    for T, B in ((4, 2), (1, 2), (3, 1)):
        xs, h0 = _randn(g, T, B, I).numpy(), _randn(g, B, H).numpy()
        hs = _forward_reference(xs, h0, *W)
        cases.append((f"a sequence of {T} steps and a batch of {B}", (xs, h0, hs, *W, _randn(g, T, B, H).numpy())))
    mistakes = [
        ("no gradient flows back through time: the gradient at h_t is dhs[t] plus what step t+1 "
         "sends back to it (dh_next = da @ W_hh).", _bptt_variant(recurrent=False)),
        ("the tanh derivative is missing: h_t = tanh(a_t), so da = dh * (1 - h_t**2).", _bptt_variant(local="none")),
        ("your tanh derivative uses h_{t-1}; it must use the output of this step's tanh: "
         "da = dh * (1 - hs[t]**2).", _bptt_variant(local="prev")),
        ("the gradient sent back to h_{t-1} uses W_hh.T; since a_t = ... + h_{t-1} @ W_hh.T, it "
         "is da @ W_hh.", _bptt_variant(carry_T=True)),
        ("dW_hh pairs da_t with h_t; the weight multiplied h_{t-1}, so dW_hh += da.T @ h_{t-1}.",
         _bptt_variant(dW_hh_with="h")),
        ("your loop runs forwards in time; backpropagation starts at the last step, "
         "for t in reversed(range(T)).", _bptt_variant(forward=True)),
        ("db keeps a batch axis: sum da over the batch, db += da.sum(axis=0).", _bptt_variant(sum_b=False)),
    ]
    _check(rnn_backward, "rnn_backward", _bptt_reference, cases, mistakes, GRAD_KEYS, as_dict=True, against="torch autograd")
    # A second, independent reference: nudge each parameter both ways and watch the loss.
    xs, h0, hs, W_ih, W_hh, b, dhs = cases[0][1]
    numerical = _numerical_gradient(xs, h0, W_ih, W_hh, b, dhs)
    got = _outputs(rnn_backward(*copy.deepcopy(cases[0][1])), GRAD_KEYS, "rnn_backward", True, True)
    for key in GRAD_KEYS:
        gap = np.abs(got[key] - numerical[key]).max()
        if gap > 1e-6:
            raise AssertionError(f"`rnn_backward`'s {key} differs from a numerical gradient by {gap:.3g}")
    print("✓ `rnn_backward` also agrees with a numerical gradient (central differences).")


# ---------------------------------------------------------------------------------------------
# Chapter 02: the LSTM
# ---------------------------------------------------------------------------------------------

_ACT = {"s": torch.sigmoid, "t": torch.tanh}


def _lstm_reference(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.lstm_cell(x, (h_prev, c_prev), weight_ih, weight_hh, bias_ih, bias_hh)


def _lstm_variant(order="ifgo", acts="ssts", forget=True, write=True, h_from="c", biases=2, swap=False):
    def step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
        pre = x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + (bias_hh if biases == 2 else 0)
        blocks = dict(zip(order, pre.chunk(4, dim=-1)))
        i, f, g, o = (_ACT[a](blocks[k]) for a, k in zip(acts, "ifgo"))
        c = (f * c_prev if forget else c_prev) + (i * g if write else g)
        h = o * {"c": torch.tanh(c), "raw": c, "c_prev": torch.tanh(c_prev)}[h_from]
        return (c, h) if swap else (h, c)

    return step


def _lstm_mistakes() -> list[Mistake]:
    gates = {"i": "input gate", "f": "forget gate", "o": "output gate"}
    mistakes = [
        (f"your {gates[k]} uses tanh; the gates i, f and o use the sigmoid, so each is a soft "
         f"switch between 0 and 1 (only the candidate g uses tanh).",
         _lstm_variant(acts="".join("t" if gate == k else a for gate, a in zip("ifgo", "ssts"))))
        for k in gates
    ]
    mistakes += [
        ("your candidate g uses the sigmoid; g is the new content to write and uses tanh, so it "
         "can be negative.", _lstm_variant(acts="ssss")),
        ("all four blocks use tanh; i, f and o are gates and use the sigmoid.", _lstm_variant(acts="tttt")),
        ("your cell state ignores the forget gate: it should be c = f * c_prev + i * g.", _lstm_variant(forget=False)),
        ("the input gate does not scale the candidate: c = f * c_prev + i * g.", _lstm_variant(write=False)),
        ("h = o * c: you forgot the tanh on the cell state, h = o * tanh(c).", _lstm_variant(h_from="raw")),
        ("h uses the old cell state c_prev; use the new one, h = o * tanh(c).", _lstm_variant(h_from="c_prev")),
        ("only bias_ih is added; PyTorch has two biases and adds both (only their sum matters).", _lstm_variant(biases=1)),
        ("you returned (c, h); return (h, c), like torch.nn.LSTMCell.", _lstm_variant(swap=True)),
    ]
    for order in itertools.permutations("ifgo"):
        if order != tuple("ifgo"):
            mistakes.append(
                (f"your gates are sliced in the order {'|'.join(order)}; PyTorch stacks the rows "
                 f"of weight_ih and weight_hh as i|f|g|o: input gate rows 0:H, forget gate H:2H, "
                 f"candidate 2H:3H, output gate 3H:4H.", _lstm_variant(order="".join(order)))
            )
    return mistakes


def _step_cases(g: torch.Generator, I: int, H: int, gates: int, cell_state: bool, extra=()) -> list[Case]:
    """A random batch, a batch of one and a zero state for a cell with ``gates`` blocks."""
    weights = (_randn(g, gates * H, I, scale=0.6), _randn(g, gates * H, H, scale=0.6),
               _randn(g, gates * H, scale=0.5), _randn(g, gates * H, scale=0.5), *extra)
    cases = []
    for description, B, zero in (("a batch of 3", 3, False), ("a batch of 1", 1, False), ("a zero state", 2, True)):
        states = [torch.zeros(B, H, dtype=torch.float64) if zero else _randn(g, B, H) for _ in range(1 + cell_state)]
        cases.append((description, (_randn(g, B, I), *states, *weights)))
    return cases


@_keeps_rng
def check_lstm_step(lstm_step: Callable, seed: int = 0) -> None:
    """Test 2.1: ``lstm_step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh) -> (h, c)``."""
    g = torch.Generator().manual_seed(seed)
    cases = _step_cases(g, 3, 4, 4, cell_state=True)
    _check(lstm_step, "lstm_step", _lstm_reference, cases, _lstm_mistakes(), ("h", "c"),
           against="torch.nn.LSTMCell", gradients=True)


def _forget_bias_reference(cell, value):
    H = cell.hidden_size
    with torch.no_grad():
        cell.bias_ih[H : 2 * H] = value
        cell.bias_hh[H : 2 * H] = 0.0
    return None


def _as_state(setter: Callable) -> Callable:
    """Turn an in-place setter into a function returning the cell's parameters afterwards."""

    def run(cell, value):
        setter(cell, value)
        return {name: p.detach().clone() for name, p in cell.named_parameters()}

    run.__signature__ = inspect.signature(_forget_bias_reference)
    return run


def _bias_variant(blocks=(1,), value_hh: str = "zero", whole=False):
    def setter(cell, value):
        H = cell.hidden_size
        with torch.no_grad():
            for block in blocks:
                rows = slice(None) if whole else slice(block * H, (block + 1) * H)
                cell.bias_ih[rows] = value
                if value_hh != "keep":
                    cell.bias_hh[rows] = value if value_hh == "value" else 0.0

    return setter


@_keeps_rng
def check_forget_bias(set_forget_bias: Callable, seed: int = 0) -> None:
    """Test 2.2: ``set_forget_bias(cell, value)`` sets b_if + b_hf = value in place."""
    torch.manual_seed(seed)  # the global RNG is restored afterwards (_keeps_rng)
    cases = [(f"an nn.LSTMCell(3, {H}) and value={v}", (nn.LSTMCell(3, H).double(), v)) for H, v in ((4, 1.0), (1, 3.0), (5, -2.0))]
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    mistakes = [
        ("the biases did not change. Fill the slices of cell.bias_ih and cell.bias_hh in place "
         "(changing a copy, or returning a new cell, leaves this one as it was).", _as_state(lambda cell, value: None)),
        ("you set the first block, which is the input gate; the forget gate is the second block, "
         "rows H:2H (the order is i|f|g|o).", _as_state(_bias_variant(blocks=(0,)))),
        ("you set the third block (the candidate g); the forget gate is rows H:2H.", _as_state(_bias_variant(blocks=(2,)))),
        ("you set the forget slice of both biases to value, so the gate starts at sigmoid(2 * value): "
         "only b_ih + b_hh matters, so set bias_hh's slice to 0.", _as_state(_bias_variant(value_hh="value"))),
        ("the forget slice of bias_hh still holds its random value, so the sum is not value: set it to 0.",
         _as_state(_bias_variant(value_hh="keep"))),
        ("you set the whole bias vector; only the forget gate's slice, rows H:2H, should change.", _as_state(_bias_variant(whole=True))),
    ]
    hints = [("leaf Variable", "PyTorch refuses to change a parameter in place while it tracks "
              "gradients: wrap the assignment in `with torch.no_grad():`.")]
    _check(_as_state(set_forget_bias), "set_forget_bias", _as_state(_forget_bias_reference), cases,
           mistakes, names, as_dict=True, against="course_lib.cells.init_forget_bias", error_hints=hints)


def _half_life_reference(forget_bias):
    return math.log(0.5) / math.log(torch.sigmoid(torch.tensor(float(forget_bias))).item())


@_keeps_rng
def check_half_life(forget_half_life: Callable, seed: int = 0) -> None:
    """Test 2.3: ``forget_half_life(forget_bias) -> steps`` until c halves with the gate at sigmoid(b)."""
    biases = [3.0, 1.0, 0.0, -1.5] + [round(float(_randn(torch.Generator().manual_seed(seed), 1)), 3)]
    cases = [(f"forget_bias={b}", (b,)) for b in biases]

    def f(b):
        return 1 / (1 + math.exp(-b))

    mistakes = [
        ("you used the bias itself as the forget gate; the gate is f = sigmoid(b) = 1 / (1 + e^-b).",
         lambda b: math.log(0.5) / math.log(b)),
        ("that is the mean lifetime 1 / (1 - f); the half-life n solves f**n = 1/2, so n = log(1/2) / log(f).",
         lambda b: 1 / (1 - f(b))),
        ("your ratio is upside down: f**n = 1/2 gives n = log(1/2) / log(f).", lambda b: math.log(f(b)) / math.log(0.5)),
        ("you used 1 - f, the part forgotten per step; the part kept is f itself.", lambda b: math.log(0.5) / math.log(1 - f(b))),
        ("return the exact number of steps, a float; don't round it.", lambda b: math.ceil(math.log(0.5) / math.log(f(b)))),
        ("return the exact number of steps, a float; don't round it.", lambda b: round(math.log(0.5) / math.log(f(b)))),
    ]
    _check(forget_half_life, "forget_half_life", _half_life_reference, cases, mistakes, against="log(1/2) / log(sigmoid(b))")


# ---------------------------------------------------------------------------------------------
# Chapter 03: the GRU
# ---------------------------------------------------------------------------------------------


def _gru_reference(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    return torch.gru_cell(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh)


def _gru_variant(order="rzn", reset="after", keep_z=True, cand="t", gate="s"):
    def step(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh):
        xg = dict(zip(order, (x @ weight_ih.T + bias_ih).chunk(3, dim=-1)))
        W = dict(zip(order, weight_hh.chunk(3, dim=0)))
        b = dict(zip(order, bias_hh.chunk(3)))
        r = _ACT[gate](xg["r"] + h_prev @ W["r"].T + b["r"])
        z = _ACT[gate](xg["z"] + h_prev @ W["z"].T + b["z"])
        hn = {
            "after": lambda: r * (h_prev @ W["n"].T + b["n"]),
            "before": lambda: (r * h_prev) @ W["n"].T + b["n"],
            "bias_outside": lambda: r * (h_prev @ W["n"].T) + b["n"],
            "none": lambda: h_prev @ W["n"].T + b["n"],
        }[reset]()
        n = _ACT[cand](xg["n"] + hn)
        return (1 - z) * n + z * h_prev if keep_z else z * n + (1 - z) * h_prev

    return step


@_keeps_rng
def check_gru_step(gru_step: Callable, seed: int = 0) -> None:
    """Test 3.1: ``gru_step(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh) -> h`` (PyTorch's form)."""
    g = torch.Generator().manual_seed(seed)
    cases = _step_cases(g, 3, 4, 3, cell_state=False)
    mistakes = [
        ("you applied the reset gate before the matrix, W_hn (r * h_prev): that is Cho et al.'s "
         "form. PyTorch applies it after the matrix and its bias: n = tanh(W_in x + b_in + "
         "r * (W_hn h_prev + b_hn)).", _gru_variant(reset="before")),
        ("b_hn sits inside the reset in PyTorch's GRU, r * (W_hn h_prev + b_hn); you added it outside.",
         _gru_variant(reset="bias_outside")),
        ("your candidate n ignores the reset gate: n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn)).",
         _gru_variant(reset="none")),
        ("z and 1 - z are swapped: PyTorch keeps the old state with z, h = (1 - z) * n + z * h_prev.",
         _gru_variant(keep_z=False)),
        ("your candidate n uses the sigmoid; it is new content and uses tanh.", _gru_variant(cand="s")),
        ("your gates r and z use tanh; gates use the sigmoid, to lie between 0 and 1.", _gru_variant(gate="t")),
    ]
    for order in itertools.permutations("rzn"):
        if order != tuple("rzn"):
            mistakes.append(
                (f"your gates are sliced in the order {'|'.join(order)}; PyTorch stacks them as "
                 f"r|z|n: reset rows 0:H, update H:2H, candidate 2H:3H.", _gru_variant(order="".join(order)))
            )
    _check(gru_step, "gru_step", _gru_reference, cases, mistakes, ("h",), against="torch.nn.GRUCell", gradients=True)


def _count_reference(kind, input_size, hidden_size, num_layers=1, bidirectional=False):
    module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    return sum(p.numel() for p in module(input_size, hidden_size, num_layers, bidirectional=bidirectional).parameters())


def _count_variant(gates=(1, 4, 3), biases=2, upper="DH", directions=True, layers=True):
    def count(kind, input_size, hidden_size, num_layers=1, bidirectional=False):
        k = dict(zip(("rnn", "lstm", "gru"), gates))[kind]
        D = 2 if bidirectional else 1
        total = 0
        for layer in range(num_layers if layers else 1):
            size = input_size if layer == 0 else {"DH": D * hidden_size, "H": hidden_size, "I": input_size}[upper]
            total += (D if directions else 1) * k * hidden_size * (size + hidden_size + biases)
        return total

    return count


@_keeps_rng
def check_count_parameters(count_parameters: Callable, seed: int = 0) -> None:
    """Test 3.2: ``count_parameters(kind, input_size, hidden_size, num_layers=1, bidirectional=False)``."""
    sizes = [(5, 7), (10, 3), (2 + seed % 5, 6 + seed % 3)]
    configs = [("lstm", 1, False), ("gru", 1, False), ("rnn", 1, False), ("lstm", 3, False),
               ("gru", 1, True), ("lstm", 2, True), ("gru", 3, True), ("rnn", 2, True)]
    cases = [
        (f"{kind}, input_size={I}, hidden_size={H}, num_layers={L}, bidirectional={D}", (kind, I, H, L, D))
        for (I, H), (kind, L, D) in itertools.product(sizes, configs)
    ]
    cases.sort(key=lambda case: (case[1][3], case[1][4]))  # the simplest layers first
    mistakes = [
        ("you counted one bias per gate; torch.nn has two, bias_ih and bias_hh (the same count as "
         "its weights' rows, twice).", _count_variant(biases=1)),
        ("you counted no biases; torch.nn layers have bias_ih and bias_hh.", _count_variant(biases=0)),
        ("the number of blocks is off: an RNN has 1, an LSTM 4 (i, f, g, o), a GRU 3 (r, z, n).", _count_variant(gates=(1, 4, 4))),
        ("the number of blocks is off: an RNN has 1, an LSTM 4 (i, f, g, o), a GRU 3 (r, z, n).", _count_variant(gates=(1, 3, 3))),
        ("layers above the first read the layer below, so their input size is hidden_size times "
         "the number of directions, not input_size.", _count_variant(upper="I")),
        ("a bidirectional layer passes 2 * hidden_size features up, so the layers above it have "
         "input size 2 * hidden_size.", _count_variant(upper="H")),
        ("a bidirectional layer has two full sets of weights, one per direction.", _count_variant(directions=False)),
        ("each of the num_layers layers has its own weights.", _count_variant(layers=False)),
    ]
    _check(count_parameters, "count_parameters", _count_reference, cases, mistakes, against="torch.nn's parameters")


# ---------------------------------------------------------------------------------------------
# Chapter 04: peepholes
# ---------------------------------------------------------------------------------------------


def _peephole_reference(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co):
    gates = x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + bias_hh
    h, c, _ = peephole_pointwise(gates, c_prev, weight_ci, weight_cf, weight_co)
    return h, c


def _peephole_variant(peep_i="ci", peep_f="cf", peep_o="new"):
    def step(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh, weight_ci, weight_cf, weight_co):
        w = {"ci": weight_ci, "cf": weight_cf, "none": torch.zeros_like(weight_ci)}
        i, f, g, o = (x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + bias_hh).chunk(4, dim=-1)
        i = torch.sigmoid(i + w[peep_i] * c_prev)
        f = torch.sigmoid(f + w[peep_f] * c_prev)
        c = f * c_prev + i * torch.tanh(g)
        o = torch.sigmoid(o + {"new": weight_co * c, "old": weight_co * c_prev, "none": 0}[peep_o])
        return o * torch.tanh(c), c

    return step


@_keeps_rng
def check_peephole_step(peephole_step: Callable, seed: int = 0) -> None:
    """Test 4.1: the peephole LSTM step with diagonal peepholes -> (h, c)."""
    g = torch.Generator().manual_seed(seed)
    H = 4
    peepholes = tuple(_randn(g, H) for _ in range(3))
    cases = _step_cases(g, 3, H, 4, cell_state=True, extra=peepholes)
    mistakes = [
        ("your output gate peeks at c_{t-1}; it should see the new cell state c_t, so compute c "
         "first and then o = sigmoid(... + w_co * c).", _peephole_variant(peep_o="old")),
        ("your output gate has no peephole: add weight_co * c (the new cell state).", _peephole_variant(peep_o="none")),
        ("your forget gate has no peephole: add weight_cf * c_prev.", _peephole_variant(peep_f="none")),
        ("your input gate has no peephole: add weight_ci * c_prev.", _peephole_variant(peep_i="none")),
        ("weight_ci and weight_cf are swapped: the input gate uses weight_ci, the forget gate weight_cf.",
         _peephole_variant(peep_i="cf", peep_f="ci")),
        ("there are no peephole terms at all: this is the plain LSTM step.", _peephole_variant("none", "none", "none")),
    ]
    _check(peephole_step, "peephole_step", _peephole_reference, cases, mistakes, ("h", "c"),
           against="course_lib.cells.PeepholeLSTMCell", gradients=True)


def _peephole_count_reference(input_size, hidden_size, full=False):
    return sum(p.numel() for p in PeepholeLSTMCell(input_size, hidden_size, full=full).parameters())


def _peephole_count_variant(peepholes=3, biases=2, full_as="H*H", diagonal_as="H", lstm=True):
    def count(input_size, hidden_size, full=False):
        H = hidden_size
        per_peephole = {"H": H, "H*H": H * H, "3H": 3 * H}[full_as if full else diagonal_as]
        return (4 * H * (input_size + H + biases) if lstm else 0) + peepholes * per_peephole

    return count


@_keeps_rng
def check_peephole_count(peephole_parameter_count: Callable, seed: int = 0) -> None:
    """Test 4.2: ``peephole_parameter_count(input_size, hidden_size, full=False)`` for one cell."""
    sizes = [(3, 4), (10, 20), (1, 1), (2 + seed % 7, 5 + seed % 11)]
    cases = [(f"input_size={I}, hidden_size={H}, full={full}", (I, H, full)) for full in (False, True) for I, H in sizes]
    mistakes = [
        ("there are three peepholes (into i, f and o); the candidate g has none.", _peephole_count_variant(peepholes=4)),
        ("you counted one bias per gate; the cell has two, bias_ih and bias_hh, like torch.nn.", _peephole_count_variant(biases=1)),
        ("a diagonal peephole is a vector of H weights (one per cell), not an H x H matrix.", _peephole_count_variant(diagonal_as="H*H")),
        ("full peepholes are H x H matrices: 3 * H**2 weights in all, not 3 * H.", _peephole_count_variant(full_as="H")),
        ("count the whole cell: the LSTM's weights and biases plus the peepholes.", _peephole_count_variant(lstm=False)),
    ]
    _check(peephole_parameter_count, "peephole_parameter_count", _peephole_count_reference, cases, mistakes,
           against="course_lib.cells.PeepholeLSTMCell's parameters")


# ---------------------------------------------------------------------------------------------
# Chapter 05: bidirectional layers and variable lengths
# ---------------------------------------------------------------------------------------------


def _padded_cases(g: torch.Generator, F: int) -> list[Case]:
    """Sequences (T, B, F) with lengths; the padding holds random values, not zeros."""
    return [
        (f"lengths {tuple(lengths)} (T={T})", (_randn(g, T, len(lengths), F), torch.tensor(lengths)))
        for T, lengths in ((5, [5, 3, 1, 4]), (4, [4, 4]), (1, [1, 1, 1]), (6, [2]))
    ]


def _reverse_reference(x, lengths):
    return reverse_time(x, lengths)


def _zero_padding(x, lengths):
    return x * (torch.arange(x.shape[0]).unsqueeze(1) < lengths).unsqueeze(-1)


@_keeps_rng
def check_reverse_within_lengths(reverse_within_lengths: Callable, seed: int = 0) -> None:
    """Test 5.1: ``reverse_within_lengths(x, lengths)``: reverse each sequence within its length."""
    cases = _padded_cases(torch.Generator().manual_seed(seed), 2)
    mistakes = [
        ("you reversed over the whole padded length, so short sequences now start with padding. "
         "Reverse each sequence within its own length: step t of a length-L sequence goes to "
         "L - 1 - t, and the padding stays where it is.", lambda x, lengths: x.flip(0)),
        ("you flipped the batch axis (dim 1); time is dim 0.", lambda x, lengths: x.flip(1)),
        ("you flipped the feature axis (the last one); time is dim 0.", lambda x, lengths: x.flip(-1)),
        ("the real steps are right, but your padding changed: leave the steps past each length as "
         "they were.", lambda x, lengths: _zero_padding(reverse_time(x, lengths), lengths)),
    ]
    _check(reverse_within_lengths, "reverse_within_lengths", _reverse_reference, cases, mistakes,
           against="course_lib.layers.reverse_time")


def _make_rnn(g: torch.Generator, I: int, H: int) -> nn.GRU:
    rnn = nn.GRU(I, H).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.copy_(_randn(g, *p.shape, scale=0.5))
    return rnn


def _bidirectional_reference(x, lengths, forward_rnn, backward_rnn):
    layer = GRU(forward_rnn.input_size, forward_rnn.hidden_size, bidirectional=True).double()
    state = {}
    for suffix, rnn in (("_l0", forward_rnn), ("_l0_reverse", backward_rnn)):
        state.update({f"{name}{suffix}": getattr(rnn, f"{name}_l0") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    layer.load_state_dict(state)
    return layer(x, lengths=lengths)[0]


def _bidirectional_variant(reverse="within", flip_back=True, forward_first=True, same=False, mask=True, combine="cat"):
    def run(x, lengths, forward_rnn, backward_rnn):
        turn = {"within": lambda s: reverse_time(s, lengths), "all": lambda s: s.flip(0), "none": lambda s: s}[reverse]
        out_f = forward_rnn(x)[0]
        out_b = (forward_rnn if same else backward_rnn)(turn(x))[0]
        out_b = turn(out_b) if flip_back else out_b
        parts = (out_f, out_b) if forward_first else (out_b, out_f)
        out = torch.cat(parts, dim=-1) if combine == "cat" else parts[0] + parts[1]
        return _zero_padding(out, lengths) if mask else out

    return run


@_keeps_rng
def check_bidirectional(bidirectional: Callable, seed: int = 0) -> None:
    """Test 5.2: ``bidirectional(x, lengths, forward_rnn, backward_rnn) -> (T, B, 2H)``."""
    g = torch.Generator().manual_seed(seed)
    I, H = 2, 3
    forward_rnn, backward_rnn = _make_rnn(g, I, H), _make_rnn(g, I, H)
    cases = [(d, (*args, forward_rnn, backward_rnn)) for d, args in _padded_cases(g, I)]
    mistakes = [
        ("the backward direction's outputs are still in reversed order: turn them around again "
         "(within each length) before concatenating, so output[t] describes step t from both sides.",
         _bidirectional_variant(flip_back=False)),
        ("you reversed over the padding, so for short sequences the backward RNN starts on padding. "
         "Reverse each sequence within its length (reverse_time(x, lengths)), both before and after.",
         _bidirectional_variant(reverse="all")),
        ("you reversed over the padding, so for short sequences the backward RNN starts on padding. "
         "Reverse each sequence within its length (reverse_time(x, lengths)), both before and after.",
         _bidirectional_variant(reverse="all", mask=False)),
        ("the backward RNN read the sequence forwards: reverse each sequence before running it.",
         _bidirectional_variant(reverse="none")),
        ("forward first, then backward: torch.cat([forward, backward], dim=-1), as torch.nn does.",
         _bidirectional_variant(forward_first=False)),
        ("both directions used forward_rnn; the backward direction has its own weights, backward_rnn.",
         _bidirectional_variant(same=True)),
        ("your outputs at padded steps (past each length) are not zero: multiply by a (T, B, 1) "
         "mask that is 1 where t < lengths[b].", _bidirectional_variant(mask=False)),
        ("you added the two directions; concatenate them along the last axis, giving (T, B, 2H).",
         _bidirectional_variant(combine="sum")),
    ]
    _check(bidirectional, "bidirectional", _bidirectional_reference, cases, mistakes,
           against="course_lib.layers.GRU(bidirectional=True) with lengths", gradients=False)


def _final_states_reference(output, lengths):
    H = output.shape[-1] // 2
    last = output[lengths - 1, torch.arange(output.shape[1])]  # (B, 2H): each sequence's last real step
    return torch.cat([last[:, :H], output[0, :, H:]], dim=-1)  # backward half ends at t = 0


def _final_variant(forward_at="last", backward_at="first", swap=False):
    def run(output, lengths):
        H, B = output.shape[-1] // 2, output.shape[1]
        at = {"last": output[lengths - 1, torch.arange(B)], "first": output[0], "end": output[-1],
              "length": output[lengths.clamp(max=output.shape[0] - 1), torch.arange(B)]}
        parts = (at[forward_at][:, :H], at[backward_at][:, H:])
        return torch.cat(parts[::-1] if swap else parts, dim=-1)

    return run


@_keeps_rng
def check_final_states(final_states: Callable, seed: int = 0) -> None:
    """Test 5.3: ``final_states(output, lengths) -> (B, 2H)``, each direction's last real state."""
    g = torch.Generator().manual_seed(seed)
    layer = _bidirectional_reference  # outputs of a real bidirectional layer, zeros at padding
    forward_rnn, backward_rnn = _make_rnn(g, 2, 3), _make_rnn(g, 2, 3)
    cases = [
        (d, (layer(x, lengths, forward_rnn, backward_rnn).detach(), lengths))
        for d, (x, lengths) in _padded_cases(g, 2)
    ]
    mistakes = [
        ("output[-1] is the last padded step: for short sequences it is padding, and its backward "
         "half has read a single step. Take the forward half at step lengths - 1 and the backward "
         "half at step 0.", _final_variant("end", "end")),
        ("the forward half comes from output[-1], which is padding for short sequences; take it at "
         "each sequence's last real step, lengths[b] - 1.", _final_variant("end", "first")),
        ("the backward direction reads right to left, so it ends at step 0: take its half from output[0].",
         _final_variant("last", "last")),
        ("the forward half must come from each sequence's last real step, lengths[b] - 1, not step 0.",
         _final_variant("first", "first")),
        ("off by one: the last real step of a sequence of length L is L - 1.", _final_variant("length", "first")),
        ("the halves are swapped: forward first ([:, :H] at lengths - 1), then backward ([:, H:] at 0).",
         _final_variant(swap=True)),
    ]
    _check(final_states, "final_states", _final_states_reference, cases, mistakes,
           against="h_n of course_lib.layers.GRU(bidirectional=True)")


# ---------------------------------------------------------------------------------------------
# Chapter 06: attention
# ---------------------------------------------------------------------------------------------


def _additive_reference(query, keys, W_q, W_k, b, v):
    scores = attention.additive_scores((query @ W_q.T).unsqueeze(1), keys @ W_k.T + b, v)  # (B, 1, S)
    return scores.squeeze(1)


def _additive_variant(squash="inside", bias=True, combine="add", reduce="v"):
    def scores(query, keys, W_q, W_k, b, v):
        q, k = (query @ W_q.T).unsqueeze(1), keys @ W_k.T + (b if bias else 0)  # (B, 1, A), (B, S, A)
        energy = q + k if combine == "add" else q * k
        if squash == "outside":
            return torch.tanh(energy @ v)
        energy = {"inside": torch.tanh, "sigmoid": torch.sigmoid, "none": lambda e: e}[squash](energy)
        return energy @ v if reduce == "v" else energy.sum(-1)

    return scores


def _attention_cases(g: torch.Generator, Hq: int, Hk: int, Hv: int, extra: Callable) -> list[Case]:
    cases = []
    for description, B, S, lengths in (("a batch of 3 with padding", 3, 5, [5, 2, 4]),
                                        ("a batch of 1 without padding", 1, 4, [4]),
                                        ("a single source position", 2, 1, [1, 1])):
        mask = torch.arange(S).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, S)
        cases.append((description, extra(_randn(g, B, Hq), _randn(g, B, S, Hk), _randn(g, B, S, Hv), mask)))
    return cases


@_keeps_rng
def check_additive_scores(additive_scores: Callable, seed: int = 0) -> None:
    """Test 6.1: ``additive_scores(query, keys, W_q, W_k, b, v) -> (B, S)``, Bahdanau's score."""
    g = torch.Generator().manual_seed(seed)
    Hq, Hk, A = 3, 4, 5
    W = (_randn(g, A, Hq), _randn(g, A, Hk), _randn(g, A), _randn(g, A))
    cases = _attention_cases(g, Hq, Hk, 1, lambda q, k, v, m: (q, k, *W))
    mistakes = [
        ("the tanh is missing: e = v . tanh(W_q q + W_k k + b).", _additive_variant(squash="none")),
        ("the tanh goes inside: v . tanh(W_q q + W_k k + b), not tanh(v . (...)).", _additive_variant(squash="outside")),
        ("you squashed with the sigmoid; Bahdanau's score uses tanh.", _additive_variant(squash="sigmoid")),
        ("you summed the energy over its A units; project it with v instead (energy @ v).", _additive_variant(reduce="sum")),
        ("the bias b is missing: tanh(W_q q + W_k k + b).", _additive_variant(bias=False)),
        ("additive attention adds the projected query and key; you multiplied them.", _additive_variant(combine="mul")),
    ]
    _check(additive_scores, "additive_scores", _additive_reference, cases, mistakes,
           against="course_lib.attention.additive_scores", gradients=True)


def _softmax_reference(scores, mask):
    _, weights = attention.attend(scores.unsqueeze(1), scores.new_zeros(*scores.shape, 1), mask)
    return weights.squeeze(1)


SOFTMAX_OVERFLOW = (
    "exp of a large score overflows: subtract each row's maximum before exp (a softmax is "
    "unchanged by a shift), or use torch.softmax"
)


@_keeps_rng
def check_masked_softmax(masked_softmax: Callable, seed: int = 0) -> None:
    """Test 6.2: ``masked_softmax(scores, mask) -> weights`` over the last axis, zero where mask is False."""
    g = torch.Generator().manual_seed(seed)
    cases = _attention_cases(g, 1, 1, 1, lambda q, k, v, m: (_randn(g, *m.shape, scale=2.0), m))
    scores, mask = cases[0][1]
    cases.append(("large scores (around 1000)", (1000 * scores, mask)))
    neg = float("-inf")
    mistakes = [
        ("padded positions got weight: the mask is ignored. Set their scores to -inf before the "
         "softmax, e.g. scores.masked_fill(~mask, float('-inf')).", lambda s, m: torch.softmax(s, dim=-1)),
        ("your softmax normalises over the batch axis (dim 0); each example's weights must sum to "
         "1 over its S positions: use dim=-1.", lambda s, m: torch.softmax(s.masked_fill(~m, neg), dim=0)),
        ("you zeroed the padded weights after the softmax, so the real ones no longer sum to 1: "
         "mask the scores before the softmax.", lambda s, m: torch.softmax(s, dim=-1) * m),
        ("you set the padded scores to 0, which still gets weight e^0 = 1; use -inf.",
         lambda s, m: torch.softmax(s.masked_fill(~m, 0.0), dim=-1)),
        ("your mask is inverted: True marks the real positions, False the padding.",
         lambda s, m: torch.softmax(s.masked_fill(m, neg), dim=-1)),
    ]
    _check(masked_softmax, "masked_softmax", _softmax_reference, cases, mistakes,
           against="torch.softmax with -inf at the padding", gradients=True, nan_hint=SOFTMAX_OVERFLOW)


def _dot_reference(query, keys, values, mask):
    context, weights = attention.attend(attention.dot_scores(query.unsqueeze(1), keys, scaled=True), values, mask)
    return context.squeeze(1), weights.squeeze(1)


def _dot_variant(scale="sqrt", masked=True, dim=-1, average="values", swap=False):
    def run(query, keys, values, mask):
        d = query.shape[-1]
        scores = (keys @ query.unsqueeze(-1)).squeeze(-1) / {"sqrt": math.sqrt(d), "d": d, "none": 1}[scale]
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")) if masked else scores, dim=dim)
        source = keys if average == "keys" else values
        context = source.mean(1) if average == "mean" else (weights.unsqueeze(-1) * source).sum(1)
        return (weights, context) if swap else (context, weights)

    return run


@_keeps_rng
def check_attention(scaled_dot_attention: Callable, seed: int = 0) -> None:
    """Test 6.3: ``scaled_dot_attention(query, keys, values, mask) -> (context, weights)``."""
    g = torch.Generator().manual_seed(seed)
    cases = _attention_cases(g, 4, 4, 3, lambda q, k, v, m: (q, k, v, m))
    mistakes = [
        ("the scores are not scaled: divide q . k by sqrt(d), d being the query size.", _dot_variant(scale="none")),
        ("divide the scores by sqrt(d), not by d.", _dot_variant(scale="d")),
        ("padded positions got weight: set their scores to -inf before the softmax.", _dot_variant(masked=False)),
        ("your softmax runs over the batch axis (dim 0); each example's weights sum to 1 over its "
         "source positions: dim=-1.", _dot_variant(dim=0)),
        ("your context averages the keys; attention averages the values.", _dot_variant(average="keys")),
        ("your context is the plain mean of the values; weight each value by its attention weight.",
         _dot_variant(average="mean")),
        ("you returned (weights, context); return (context, weights).", _dot_variant(swap=True)),
    ]
    _check(scaled_dot_attention, "scaled_dot_attention", _dot_reference, cases, mistakes, ("context", "weights"),
           against="course_lib.attention (scaled dot-product)", gradients=True, nan_hint=SOFTMAX_OVERFLOW)

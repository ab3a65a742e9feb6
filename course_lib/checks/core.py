"""The machinery every check shares: call the learner's function, compare, find the mistake.

:func:`compare` runs a learner's function and a reference on the same inputs (each a ``Case``:
a description and the arguments) and, where they differ, tries a list of known mistakes (each a
``Mistake``: a hint and a function that makes exactly that mistake) on the same inputs. If the
learner's output equals a mistake's, the ``AssertionError`` carries that mistake's hint;
otherwise it reports the largest difference, where it is and the shapes. It also compares
gradients when asked, and turns the learner's errors into readable ones.

What it guarantees to the exercise notebooks:

* a ``NotImplementedError`` from the learner's function (a blank exercise) propagates unchanged;
* any other exception becomes an ``AssertionError`` that describes the inputs, chained to the
  original so its traceback stays visible;
* the learner's inputs are copies: a function that changes its inputs in place is told so;
* every ``AssertionError`` message starts with "Not quite", and a pass prints one line with ✓.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

Case = tuple[str, tuple]  # a description ("a batch of 3") and the arguments to call with
Mistake = tuple[str, Callable]  # a hint and a function that makes exactly that mistake

# Agreement in float64: far tighter than any real mistake, far looser than rounding differences
# between equivalent formulas (sigmoid written by hand, sums in another order).
RTOL, ATOL = 1e-6, 1e-8

_ERROR_HINTS = [
    (
        "in-place operation",
        "Your function changes a tensor in place (x[...] = ..., +=, .fill_()) that autograd needs; "
        "build a new tensor instead (torch.where, masked_fill, torch.cat).",
    ),
]


def keeps_rng(check: Callable) -> Callable:
    """Run a check without touching the learner's global random state."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return wrapper


def _describe(value: object) -> str:
    """A short description of an argument or a result: kind, shape and dtype for arrays."""
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


def _plain(value: object) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)


def _to_array(value: object, name: str, fn_name: str, learner: bool) -> np.ndarray:
    """One output as a float64 array; for the learner's, first check its dtype."""
    if learner:
        dtype = value.dtype if isinstance(value, Tensor | np.ndarray) else None
        if dtype in (torch.float32, torch.float16, torch.bfloat16, np.float32, np.float16):
            raise AssertionError(
                f"Not quite: `{fn_name}` returns `{name}` as {dtype}, but the check gives it "
                f"float64 inputs. Create new arrays and tensors with the inputs' dtype "
                f"(zeros_like(x), or dtype=x.dtype) instead of the default float32."
            )
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AssertionError(
            f"Not quite: `{fn_name}` returns `{name}` as {_describe(value)}, not an array"
        ) from error


def _outputs(value: object, names: tuple, fn_name: str, as_dict: bool, learner: bool) -> dict:
    """The outputs as {name: float64 array}, after checking the learner's structure."""
    if learner and value is None:
        raise AssertionError(f"Not quite: `{fn_name}` returned None. Did you forget `return`?")
    if as_dict:
        if not isinstance(value, dict):
            raise AssertionError(
                f"Not quite: `{fn_name}` should return a dict with keys {list(names)}"
            )
        missing = [key for key in names if key not in value]
        if missing:
            raise AssertionError(
                f"Not quite: `{fn_name}`'s dict lacks the keys {missing}; it needs {list(names)}"
            )
        items = [value[key] for key in names]
    elif len(names) > 1:
        if not isinstance(value, tuple | list) or len(value) != len(names):
            raise AssertionError(
                f"Not quite: `{fn_name}` should return a tuple ({', '.join(names)}), "
                f"got {_describe(value)}"
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
        if np.allclose(have, want, rtol=RTOL, atol=ATOL):
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
    """True when two sets of outputs agree (nan where both have nan counts as agreement)."""
    return all(
        a[n].shape == b[n].shape and np.allclose(a[n], b[n], rtol=RTOL, atol=ATOL, equal_nan=True)
        for n in b
    )


def _changed(before: tuple, after: tuple) -> int | None:
    """The position of an array argument that the learner's function modified, if any."""
    for index, (old, new) in enumerate(zip(before, after)):
        if isinstance(old, Tensor | np.ndarray) and not np.array_equal(
            _plain(old), _plain(new), equal_nan=True
        ):
            return index
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
    return {
        n: (torch.zeros_like(a) if g is None else g).numpy() for (n, a), g in zip(wanted, grads)
    }


def compare(
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
    """Compare ``fn`` with ``reference`` on every case; where they differ, find the mistake."""
    if not callable(fn):
        raise AssertionError(f"Not quite: pass the function itself, `{name}`, not {_describe(fn)}")
    arg_names = list(inspect.signature(reference).parameters)
    for case, args in cases:
        expected = _outputs(reference(*copy.deepcopy(args)), outputs, name, as_dict, False)
        call_args = copy.deepcopy(args)
        raw = _call(fn, name, call_args, arg_names, case, error_hints)
        got = _outputs(raw, outputs, name, as_dict, True)
        changed = _changed(args, call_args)
        if changed is not None:
            raise AssertionError(
                f"Not quite: on {case}, `{name}` modified its input `{arg_names[changed]}` in "
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
    extra = ", gradients included" if gradients else ""
    where = "; ".join(c for c, _ in cases) if len(cases) <= 5 else f"{len(cases)} different inputs"
    print(f"✓ `{name}` agrees with {against}{extra}, on {where}.")


def _compare_gradients(fn, name, reference, args, expected, arg_names, case) -> None:
    """Backpropagate the same random weighting of the outputs through ``fn`` and ``reference``."""
    generator = torch.Generator().manual_seed(1234)
    probes = [
        torch.randn(v.shape, generator=generator, dtype=torch.float64) for v in expected.values()
    ]
    want = _gradients(reference, args, probes, arg_names)
    learner = functools.partial(_gradients, fn, probes=probes, names=arg_names)
    have = _call(lambda *a: learner(a), name, args, arg_names, case, _ERROR_HINTS)  # same errors
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


def steps_phrase(T: int) -> str:
    """How a case with T time steps is described."""
    return f"a sequence of {T} steps" if T > 1 else "a single time step"


def randn(generator: torch.Generator, *shape: int, scale: float = 1.0) -> Tensor:
    """Standard normal float64 numbers from ``generator``, never from the global random state."""
    return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)


ACTIVATIONS = {"s": torch.sigmoid, "t": torch.tanh}  # by letter, for variants of a cell


def gate_order_mistakes(gates: str, layout: str, variant: Callable) -> list[Mistake]:
    """One mistake per wrong order of a cell's gate blocks (every permutation of ``gates`` but
    itself); ``layout`` says PyTorch's order, ``variant(order=...)`` slices in the wrong one."""
    return [
        (
            f"your gates are sliced in the order {'|'.join(order)}; {layout}",
            variant(order="".join(order)),
        )
        for order in itertools.permutations(gates)
        if order != tuple(gates)
    ]


def cell_cases(
    g: torch.Generator, I: int, H: int, gates: int, cell_state: bool, extra=()
) -> list[Case]:
    """A random batch, a batch of one and a zero state for a cell with ``gates`` blocks."""
    weights = (
        randn(g, gates * H, I, scale=0.6),
        randn(g, gates * H, H, scale=0.6),
        randn(g, gates * H, scale=0.5),
        randn(g, gates * H, scale=0.5),
        *extra,
    )
    cases = []
    for description, B, zero in (
        ("a batch of 3", 3, False),
        ("a batch of 1", 1, False),
        ("a zero state", 2, True),
    ):
        states = [
            torch.zeros(B, H, dtype=torch.float64) if zero else randn(g, B, H)
            for _ in range(1 + cell_state)
        ]
        cases.append((description, (randn(g, B, I), *states, *weights)))
    return cases

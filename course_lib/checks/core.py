"""The machinery every check shares: collect the learner's outputs, judge them, find the mistake.

A check is declared once, as a :class:`Check`: how to build its inputs from a seed (each a
``Case``: a description and the arguments), and one or more :class:`Comparison` s, each with a
reference and a list of known mistakes (each a ``Mistake``: a hint and a function that makes
exactly that mistake). Grading a learner's function is then two steps:

1. :func:`collect` calls the learner's function on every case and records what came out (the
   outputs as float64 arrays, the gradients where the check compares them, the error it raised,
   the argument it changed in place): the *evidence*, plain numbers and strings;
2. :func:`judge` rebuilds the same cases from the same seed, runs the reference on them and
   compares. Where they differ it tries the known mistakes on the same inputs: if the learner's
   output equals a mistake's, the verdict carries that mistake's hint; otherwise it reports the
   largest difference, where it is and the shapes.

A learner's own run (:func:`run`, what every ``check_*`` function calls) does both in the
kernel and raises an ``AssertionError`` with the hint. An instructor's run does only step 1 in
the learner's kernel (``course_lib.checks.evidence`` writes the evidence to a file) and step 2
in the grader's own process, where an answer cell cannot patch the reference or the comparison
(docs/GRADING.md). Both paths use the same declaration, so they give the same verdict.

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
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

Case = tuple[str, tuple]  # a description ("a batch of 3") and the arguments to call with
Mistake = tuple[str, Callable]  # a hint and a function that makes exactly that mistake

# Agreement in float64: far tighter than any real mistake, far looser than rounding differences
# between equivalent formulas (sigmoid written by hand, sums in another order).
RTOL, ATOL = 1e-6, 1e-8

_ERROR_HINTS = (
    (
        "in-place operation",
        "Your function changes a tensor in place (x[...] = ..., +=, .fill_()) that autograd needs; "
        "build a new tensor instead (torch.where, masked_fill, torch.cat).",
    ),
)


def keeps_rng(check: Callable) -> Callable:
    """Run a check without touching the learner's global random state."""

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)

    return wrapper


# --- the declaration of a check ----------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One reference that the learner's outputs must match, on some of the check's cases."""

    reference: Callable
    mistakes: Callable[[], Sequence[Mistake]] = tuple  # built on demand: only when an answer is off
    against: str = "the reference"  # how the messages name the reference
    first: int | None = None  # compare on the check's first cases only (None: all of them)
    gradients: bool = False  # compare the gradients too (the outputs must be torch tensors)
    nan_hint: str = ""  # added when the learner's output has nan or inf and the reference not


@dataclass(frozen=True)
class Check:
    """Everything a check needs, for the learner's run and the grader's alike."""

    name: str  # the function a test cell calls, e.g. "check_lstm_step"
    function: str  # the learner's function, as the messages name it
    cases: Callable[[int], list[Case]]  # seed -> the inputs; never uses the global random state
    comparisons: tuple[Comparison, ...]
    outputs: tuple[str, ...] = ("output",)  # the names of what the function returns
    as_dict: bool = False  # the function returns a dict with the keys ``outputs``
    adapt: Callable[[Callable], Callable] | None = None  # wraps the learner's function first
    error_hints: Sequence = field(default=_ERROR_HINTS)  # (text in an error, hint) pairs

    def make_cases(self, seed: int) -> list[Case]:
        with torch.random.fork_rng(devices=[]):  # a few cases build torch.nn modules
            return self.cases(seed)

    @property
    def arg_names(self) -> list[str]:
        return list(inspect.signature(self.comparisons[0].reference).parameters)


CHECKS: dict[str, Check] = {}  # by name: what the grader looks up when it judges evidence


def register(check: Check) -> Check:
    CHECKS[check.name] = check
    return check


# --- step 1: the evidence ----------------------------------------------------------------------


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
    try:
        if isinstance(value, Tensor):
            return value.detach().cpu().to(torch.float64).numpy()
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as error:
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


def _changed(before: tuple, after: tuple) -> int | None:
    """The position of an array argument that the learner's function modified, if any."""
    for index, (old, new) in enumerate(zip(before, after)):
        if isinstance(old, Tensor | np.ndarray) and not np.array_equal(
            _plain(old), _plain(new), equal_nan=True
        ):
            return index
    return None


def _probes(seed: int, shapes: list[tuple]) -> list[Tensor]:
    """The random weighting of the outputs that gradients are taken of (the same on both sides)."""
    generator = torch.Generator().manual_seed(1234 + seed % (2**31))
    return [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]


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
        n: (torch.zeros_like(a) if g is None else g).detach().numpy()
        for (n, a), g in zip(wanted, grads)
    }


def _gradients_of(fn: Callable, probes: list, names: list, *args):
    return _gradients(fn, args, probes, names)


def _encode(arrays: dict) -> dict:
    return {n: {"shape": list(a.shape), "data": a.ravel().tolist()} for n, a in arrays.items()}


def decode(encoded: dict) -> dict:
    """The arrays of a piece of evidence, back from their JSON form."""
    return {
        str(n): np.asarray(v["data"], dtype=np.float64).reshape([int(s) for s in v["shape"]])
        for n, v in encoded.items()
    }


def collect(check: Check, fn: Callable, seed: int, stop_at_blank: bool = False) -> dict:
    """Step 1: run the learner's ``fn`` on every case of ``check`` and record what it did.

    Returns a dict of plain values (JSON-ready, except the key ``"exceptions"``, which keeps
    the learner's exception objects for a traceback in the same process). A
    ``NotImplementedError`` is recorded as ``"blank"`` (raised at once when ``stop_at_blank``).
    """
    evidence: dict = {"check": check.name, "cases": [], "exceptions": {}}
    if not callable(fn):
        evidence["problem"] = (
            f"Not quite: pass the function itself, `{check.function}`, not {_describe(fn)}"
        )
        return evidence
    learner = check.adapt(fn) if check.adapt else fn
    names = check.arg_names
    gradients = any(c.gradients for c in check.comparisons)
    for index, (case, args) in enumerate(check.make_cases(seed)):
        record: dict = {}
        evidence["cases"].append(record)
        call_args = copy.deepcopy(args)
        try:
            raw = _call(learner, check.function, call_args, names, case, check.error_hints)
            got = _outputs(raw, check.outputs, check.function, check.as_dict, True)
        except NotImplementedError:
            if stop_at_blank:
                raise
            record["blank"] = True
            continue
        except AssertionError as error:
            record["problem"] = str(error)
            evidence["exceptions"][index] = error.__cause__
            continue
        record["outputs"] = _encode(got)
        changed = _changed(args, call_args)
        if changed is not None:
            record["changed"] = names[changed]
        if gradients:
            probes = _probes(seed, [a.shape for a in got.values()])
            take = functools.partial(_gradients_of, learner, probes, names)
            try:
                grads = _call(take, check.function, args, names, case, _ERROR_HINTS)
            except NotImplementedError:
                record["blank"] = True
                continue
            except AssertionError as error:
                record["gradient_problem"] = str(error)
                evidence["exceptions"][index] = error.__cause__
                continue
            record["gradients"] = None if grads is None else _encode(grads)
    return evidence


# --- step 2: the verdict -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str  # the hint when failed, the ✓ line when passed
    case: int | None = None  # the case that failed
    blank: bool = False  # the learner's function raised NotImplementedError


def _difference(got: dict, expected: dict) -> str | None:
    """Where ``got`` first differs from ``expected`` (None: they agree to float64 precision)."""
    for name, want in expected.items():
        have = got.get(name)
        if have is None:
            return f"`{name}` is missing"
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
        n in a
        and a[n].shape == b[n].shape
        and np.allclose(a[n], b[n], rtol=RTOL, atol=ATOL, equal_nan=True)
        for n in b
    )


def _wrap(check: Check, function: Callable) -> Callable:
    return check.adapt(function) if check.adapt else function


def judge(check: Check, evidence: dict, seed: int) -> Verdict:
    """Step 2: compare the evidence with the references on the same cases; find the mistake."""
    if evidence.get("problem"):
        return Verdict(False, str(evidence["problem"]))
    cases = check.make_cases(seed)
    records = list(evidence.get("cases", []))
    if len(records) != len(cases):
        return Verdict(False, f"Not quite: `{check.function}` was not run on every input")
    for comparison in check.comparisons:
        for index in range(len(cases))[: comparison.first]:
            case, args = cases[index]
            record = records[index] if isinstance(records[index], dict) else {}
            if record.get("blank"):
                return Verdict(
                    False, f"`{check.function}` raised NotImplementedError", index, blank=True
                )
            if record.get("problem"):
                return Verdict(False, str(record["problem"]), index)
            if "outputs" not in record:
                return Verdict(False, f"Not quite: no outputs of `{check.function}` on {case}")
            if record.get("changed"):
                return Verdict(
                    False,
                    f"Not quite: on {case}, `{check.function}` modified its input "
                    f"`{record['changed']}` in place. Leave the inputs as they are and build new "
                    f"arrays for the results.",
                    index,
                )
            got = decode(record["outputs"])
            reference = _wrap(check, comparison.reference)
            expected = _outputs(
                reference(*copy.deepcopy(args)), check.outputs, check.function, check.as_dict, False
            )
            problem = _difference(got, expected)
            if problem is None:
                if comparison.gradients:
                    if record.get("gradient_problem"):
                        return Verdict(False, str(record["gradient_problem"]), index)
                    failure = _gradient_verdict(check, record, reference, args, expected, seed)
                    if failure:
                        return Verdict(False, f"Not quite: on {case}, {failure}", index)
                continue
            for hint, wrong in comparison.mistakes():
                try:
                    candidate = _outputs(
                        _wrap(check, wrong)(*copy.deepcopy(args)),
                        check.outputs,
                        check.function,
                        check.as_dict,
                        False,
                    )
                except Exception:  # a mistake that cannot even run on this input is not this one
                    continue
                if _same(got, candidate):
                    return Verdict(False, f"Not quite: on {case}, {hint}", index)
            if "nan or inf" in problem and comparison.nan_hint:
                problem += f". {comparison.nan_hint}"
            return Verdict(
                False,
                f"Not quite: on {case}, `{check.function}` differs from {comparison.against}: "
                f"{problem}. It matches none of the usual mistakes, so go through the equations "
                f"one term at a time and print the shapes of the intermediate results.",
                index,
            )
    against = " and ".join(c.against for c in check.comparisons)
    extra = ", gradients included" if any(c.gradients for c in check.comparisons) else ""
    descriptions = [case for case, _ in cases]
    where = "; ".join(descriptions) if len(cases) <= 5 else f"{len(cases)} different inputs"
    return Verdict(True, f"✓ `{check.function}` agrees with {against}{extra}, on {where}.")


def _gradient_verdict(check, record, reference, args, expected, seed) -> str | None:
    """What is wrong with the learner's gradients (None: they agree with the reference's)."""
    if record.get("gradients") is None:
        return (
            f"`{check.function}` computes the right values but no gradient flows "
            f"back through it. Avoid .detach(), .numpy(), .item() and torch.tensor(...) on "
            f"intermediate results: stay with torch operations from inputs to outputs."
        )
    have = decode(record["gradients"])
    probes = _probes(seed, [v.shape for v in expected.values()])
    want = _gradients(reference, args, probes, check.arg_names)
    for arg, grad in (want or {}).items():
        problem = _difference({arg: have[arg]} if arg in have else {}, {arg: grad})
        if problem:
            return (
                f"`{check.function}`'s values are right but the gradient with respect "
                f"to `{arg}` differs ({problem.split(' ', 1)[1]}). Did you detach part of the "
                f"computation or change a tensor in place?"
            )
    return None


# --- both steps in the learner's kernel: what every check_* function calls ----------------------


def run(check: Check, fn: Callable, seed: int = 0) -> None:
    """Grade ``fn`` with ``check``: raise an ``AssertionError`` with the hint, or print ✓.

    Under an instructor's grading run (``course_lib.checks.evidence`` is switched on by the
    grader) only the evidence is recorded here, on inputs drawn from the grading run's seed; the
    verdict is the grader's, reached in its own process.
    """
    from course_lib.checks import evidence as instructor

    with torch.random.fork_rng(devices=[]):
        if instructor.active():
            instructor.record(check, fn, seed)
            return
        evidence = collect(check, fn, seed, stop_at_blank=True)
        verdict = judge(check, evidence, seed)
    if not verdict.passed:
        cause = evidence["exceptions"].get(verdict.case)
        raise AssertionError(verdict.message) from cause
    print(verdict.message)


# --- helpers for building checks ---------------------------------------------------------------


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

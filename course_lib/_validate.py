"""Argument checks shared by the public API: readable errors that name the argument.

Every message says which argument was wrong, what was expected and what came, in the spirit of
``torch.nn.RNN.check_input``. Nothing is ever broadcast silently: a shape that does not match
exactly is an error.

One rule for the exception type, the one torch.nn follows for constructor arguments:

* ``TypeError`` when the argument has the wrong *type*: a string where a bool belongs
  (``batch_first="False"``), a float where an int belongs, a list where a tensor belongs, a
  tensor of integer ids where floats belong, or a dtype that differs from the parameters'.
* ``ValueError`` when the type is right but the *value* is not: a size of 0, a probability of
  1.5, an unknown choice, a wrong shape, a length out of range, a tensor on another device.

(torch.nn.RNN raises ValueError for a float64 input to float32 weights; we keep TypeError,
since the dtype is the tensor's type, and say how to convert. That is the one difference.)
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Collection
from typing import SupportsIndex

import torch
from torch import Tensor


def _type_name(value: object) -> str:
    return type(value).__name__


def check_bool(name: str, value: object) -> bool:
    """``value`` must be a bool (not 0/1, not the string "False"); returns it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {_type_name(value)} {value!r}")
    return value


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` must be an int (a bool is not one), at least ``minimum`` if given; returns it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {_type_name(value)} {value!r}")
    if minimum is not None and value < minimum:
        what = {0: "a non-negative int", 1: "a positive int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``value`` must be an int of at least 1 (a size, a count); returns it."""
    return check_int(name, value, minimum=1)


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` must be a real number (not a bool) in the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the end itself. Returns the number as a float.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_type_name(value)} {value!r}")
    number = float(value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        left = ("(" if low_open else "[") + ("-inf" if low is None else str(low))
        right = ("inf" if high is None else str(high)) + (")" if high_open else "]")
        interval = f"{left}, {right}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return number


def check_choice(name: str, value: object, choices: Collection[object]) -> None:
    """``value`` must be one of ``choices`` (an unknown name is a wrong value: ValueError)."""
    if value not in choices:
        named = tuple(choice for choice in choices if choice is not None)
        either = "None or one of" if None in choices else "one of"
        raise ValueError(f"{name} must be {either} {named}, got {value!r}")


def check_instance(name: str, value: object, kind: type | tuple[type, ...], what: str) -> None:
    """``value`` must be an instance of ``kind``; ``what`` names it in the message."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}, got {_type_name(value)}")


def check_tensor(name: str, value: object) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor; returns it (typed as a Tensor)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_float_like(name: str, value: Tensor, reference: Tensor) -> None:
    """``value`` must be floating point, with the dtype and device of ``reference``."""
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor ({reference.dtype}, like the parameters), "
            f"got {value.dtype}; token ids go through an nn.Embedding first"
        )
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but the parameters are {reference.dtype}; "
            f"convert one of them (e.g. module.to({value.dtype}) or {name}.to(...))"
        )
    if value.device != reference.device:
        raise ValueError(
            f"{name} is on {value.device} but the parameters are on {reference.device}; "
            f"move both to one device"
        )


def check_index(name: str, value: object, size: int) -> int:
    """``value`` must be an int in 0..size-1 (a unit, a position); returns it as an int."""
    index: int | None = None
    if isinstance(value, SupportsIndex) and not isinstance(value, bool):
        try:
            index = operator.index(value)  # ints, NumPy ints and one-element integer tensors
        except TypeError:  # e.g. a float tensor, which has __index__ but refuses it
            index = None
    if index is None:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= index < size:
        raise ValueError(f"{name} must be in 0..{size - 1}, got {index}")
    return index


def check_token_ids(name: str, ids: object, vocab_size: int) -> Tensor:
    """``ids`` must be a (B, T) integer tensor, T >= 1, with values in 0..vocab_size-1."""
    ids = check_tensor(name, ids)
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, T) with T >= 1, got {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"{name} must hold ids in 0..{vocab_size - 1}, "
            f"got min {int(ids.min())} and max {int(ids.max())}"
        )
    return ids


def check_shape(name: str, value: Tensor, expected: tuple[int, ...]) -> None:
    """``value.shape`` must equal ``expected`` exactly."""
    if tuple(value.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(value.shape)}")


def check_lengths(lengths: object, batch_size: int, max_time: int) -> Tensor:
    """Validate ``lengths`` (one per sequence, each in 1..T) and return it as a CPU int64 tensor."""
    if isinstance(lengths, (list, tuple)):
        lengths = torch.tensor(lengths)
    if not isinstance(lengths, Tensor):
        raise TypeError(
            f"lengths must be a 1-D tensor or list of ints, got {type(lengths).__name__}"
        )
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
    if tuple(lengths.shape) != (batch_size,):
        raise ValueError(
            f"lengths must have shape ({batch_size},) (one length per sequence), "
            f"got {tuple(lengths.shape)}"
        )
    lengths = lengths.to(device="cpu", dtype=torch.int64)
    if batch_size and (lengths.min() < 1 or lengths.max() > max_time):
        raise ValueError(
            f"every length must be between 1 and T={max_time}, got min {int(lengths.min())} "
            f"and max {int(lengths.max())}"
        )
    return lengths

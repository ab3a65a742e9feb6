"""Argument checks shared by the public API: readable errors that name the argument.

Every message says which argument was wrong, what was expected and what came, in the spirit of
``torch.nn.RNN.check_input``. Nothing is ever broadcast silently: a shape that does not match
exactly is an error.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor


def check_tensor(name: str, value: object) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor."""
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


def check_positive_int(name: str, value: object) -> int:
    """``value`` must be an int of at least 1 (a size, a count); returns it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_index(name: str, value: object, size: int) -> int:
    """``value`` must be an int in 0..size-1 (a unit, a position); returns it as an int."""
    try:
        index = operator.index(value)  # ints, NumPy ints and one-element integer tensors
    except TypeError:
        index = None
    if isinstance(value, bool) or index is None:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= index < size:
        raise ValueError(f"{name} must be in 0..{size - 1}, got {index}")
    return index


def check_token_ids(name: str, ids: object, vocab_size: int) -> Tensor:
    """``ids`` must be a (B, T) integer tensor, T >= 1, with values in 0..vocab_size-1."""
    check_tensor(name, ids)
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

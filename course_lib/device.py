"""Where the course's tensors live and how many CPU threads they use; seeding for reproducibility.

* :func:`get_device` picks CPU, CUDA or Apple's MPS once and remembers the choice. The
  environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``mps``) overrides the automatic
  choice, and ``get_device("cpu")`` overrides both for the rest of the session.
* :func:`set_threads` sets PyTorch's CPU threads (one by default, see its docstring).
* :func:`seed_everything` seeds Python's ``random``, NumPy and PyTorch (CPU and every GPU).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_NAMES = ("cpu", "cuda", "mps")
ENV_VARIABLE = "COURSE_DEVICE"

_chosen: torch.device | None = None  # the device picked by the first call, reused afterwards


def _available(name: str) -> bool:
    if name == "cpu":
        return True
    if name == "cuda":
        return torch.cuda.is_available()
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def _check_name(name: object, source: str) -> str:
    if not isinstance(name, (str, torch.device)):
        raise TypeError(f"{source} must be a str or torch.device, got {type(name).__name__}")
    text = str(name).lower()
    if text.split(":")[0] not in DEVICE_NAMES:
        raise ValueError(f"{source} must be one of {DEVICE_NAMES}, got {str(name)!r}")
    if not _available(text.split(":")[0]):
        raise ValueError(f"{source} asks for {text!r}, but this machine has no such device")
    return text


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device the course computes on.

    1. ``prefer`` (``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``) wins and becomes the
       session's choice, so later calls without an argument return it too.
    2. Otherwise the first call reads ``COURSE_DEVICE``, and without it takes CUDA, then MPS,
       then the CPU, whichever exists first. Later calls return the same device.
    """
    global _chosen
    if prefer is not None:
        _chosen = torch.device(_check_name(prefer, "prefer"))
    elif _chosen is None:
        from_env = os.environ.get(ENV_VARIABLE)
        if from_env:
            _chosen = torch.device(_check_name(from_env, ENV_VARIABLE))
        else:
            _chosen = torch.device(
                next(name for name in ("cuda", "mps", "cpu") if _available(name))
            )
    return _chosen


def set_threads(n: int | None = None) -> int:
    """Set how many CPU threads PyTorch uses; ``None`` means 1. Returns the number set.

    One thread by default because the course's models are tiny: a (64, 64) matmul per time step
    is too small to split across cores, so extra threads mostly add synchronisation cost, and on
    a shared 2-core machine (a Binder pod, a JupyterHub) they compete with everything else.
    benchmarks/README.md measures this.
    """
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and all GPUs) with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy accepts 32-bit seeds only
    torch.manual_seed(seed)  # also seeds every CUDA device

"""Where the course's tensors live and how many CPU threads they use; seeding for reproducibility.

* :func:`get_device` is the lecture device policy: the CPU, unless the learner asks for a GPU
  with the environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``mps``) or with
  ``get_device("cuda")``, which also becomes the choice for the rest of the session.
* :func:`as_device` checks a device name for one call (``fit(device=...)``) and remembers nothing.
* :func:`set_threads` sets PyTorch's CPU threads (one by default, see its docstring).
* :func:`seed_everything` seeds Python's ``random``, NumPy and PyTorch (CPU and every GPU).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from course_lib._validate import check_choice, check_instance, check_int, check_positive_int

DEVICE_NAMES = ("cpu", "cuda", "mps")
ENV_VARIABLE = "COURSE_DEVICE"

_chosen: torch.device | None = None  # the session's device, once get_device has decided


def _available(name: str) -> bool:
    if name == "cpu":
        return True
    if name == "cuda":
        return torch.cuda.is_available()
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def as_device(name: object, source: str = "device") -> torch.device:
    """``name`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``) as a
    device that this machine has; ``source`` names the argument in errors. Remembers nothing."""
    check_instance(source, name, (str, torch.device), "a str or torch.device")
    text = str(name).lower()
    kind = text.split(":")[0]
    check_choice(source, kind, DEVICE_NAMES)
    if not _available(kind):
        raise ValueError(f"{source} asks for {text!r}, but this machine has no such device")
    return torch.device(text)


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device the course computes on: the CPU unless the learner asks for another.

    1. ``prefer`` (``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``) wins and becomes the
       session's choice, so later calls without an argument return it too.
    2. Otherwise the first call reads ``COURSE_DEVICE``; without it, the CPU. Later calls return
       the same device.

    Why the CPU even where there is a GPU: the course's models are small (H = 64, batches of
    64), so each time step is a handful of tiny kernels, and on a GPU the cost of launching them
    from Python exceeds the arithmetic. Measured on an H100 machine, 200 training steps of a
    lecture's LSTM took 21 s on the GPU against 9.5 s on the same machine's CPU
    (benchmarks/README.md). A learner who wants the GPU anyway (larger models of their own)
    sets ``COURSE_DEVICE=cuda`` or calls ``get_device("cuda")``.
    """
    global _chosen
    if prefer is not None:
        _chosen = as_device(prefer, "prefer")
    elif _chosen is None:
        from_env = os.environ.get(ENV_VARIABLE)
        _chosen = as_device(from_env, ENV_VARIABLE) if from_env else torch.device("cpu")
    return _chosen


def set_threads(n: int | None = None) -> int:
    """Set how many CPU threads PyTorch uses; ``None`` means 1. Returns the number set.

    One thread by default because the course's models are tiny: a (64, 64) matmul per time step
    is too small to split across cores, so extra threads mostly add synchronisation cost, and on
    a shared 2-core machine (a Binder pod, a JupyterHub) they compete with everything else.
    benchmarks/README.md measures this.
    """
    threads = 1 if n is None else check_positive_int("n", n)
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and all GPUs) with ``seed``."""
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy accepts 32-bit seeds only
    torch.manual_seed(seed)  # also seeds every CUDA device

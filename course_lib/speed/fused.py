"""Opt-in speed on the CPU: the LSTM's gate math fused into one compiled loop per step.

Why course_lib's LSTM is slower than torch.nn.LSTM on the CPU: torch.nn.LSTM alone calls
oneDNN, which runs the whole recurrence in one kernel with the gate nonlinearities fused into the
matrix products. course_lib's layer runs one matrix product and then about ten small element-wise
kernels per step (three sigmoids, two tanh, the products and the sum), and at H = 128 those cost
as much as the matrix product (benchmarks/README.md).

:class:`FusedLSTM` and :class:`FusedPeepholeLSTM` keep everything else of the layers: the loop
over time, the hoisted input projection and one ``torch.addmm`` per step. They replace only the
element-wise part, forward and backward, by ``csrc/lstm_gates.c``: the same equations in one pass
over the gates, compiled with the system's C compiler (``cc``, or ``$CC``) on first use, which
takes well under a second, and cached in ``~/.cache/course_lib``. The backward pass is
backpropagation through time by hand (chapter 01's exercise, extended to the LSTM): per step the
gate gradients in C and dL/dh_prev = dL/da W_hh with ``torch.mm``; the gradient of W_hh comes at
the end as one large matrix product.

Where the kernel does not apply (a GPU, ``lengths=`` or a PackedSequence, full peephole matrices,
``proj_size > 0``, a dtype other than float32/float64) the layers run course_lib's usual loop,
with the same results.
The lectures never use this module.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from course_lib.layers import LSTM, PeepholeLSTM, Weights

SOURCE = Path(__file__).with_name("csrc") / "lstm_gates.c"
C_TYPES = {torch.float32: "float", torch.float64: "double"}


def _arch_flags() -> list[str]:
    """Vector instructions this machine has (the build is cached per machine and flags)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    capability = torch.backends.cpu.get_cpu_capability()
    return {"AVX512": ["-march=x86-64-v4"], "AVX2": ["-march=x86-64-v3"]}.get(capability, [])


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "course_lib"


def _build(compiler: str, flags: list[str]) -> Path:
    """The shared library for these flags: from the cache, or compiled now and cached."""
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([compiler, *flags]).encode()).hexdigest()
    library = _cache_dir() / f"lstm_gates_{key[:16]}.so"
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        # Build under a temporary name, then rename: parallel test workers never see half a file.
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            built = Path(scratch) / library.name
            command = [compiler, *flags, "-o", str(built), str(SOURCE), "-lm"]
            subprocess.run(command, check=True, capture_output=True, text=True)
            os.replace(built, library)
    return library


@functools.cache
def kernels(dtype: torch.dtype = torch.float32) -> ctypes.CDLL:
    """Compile (once per machine) and load ``lstm_gates.c`` for ``dtype``.

    With this machine's vector instructions if the compiler knows them, else without.
    """
    compiler = os.environ.get("CC", "cc")
    flags = ["-O3", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC", f"-DREAL={C_TYPES[dtype]}"]
    error = None
    for extra in dict.fromkeys((tuple(_arch_flags()), ())):  # each distinct choice, in order
        try:
            library = _build(compiler, flags + list(extra))
            break
        except (OSError, subprocess.CalledProcessError) as failure:
            error = failure
    else:
        details = getattr(error, "stderr", "") or str(error)
        raise RuntimeError(
            f"course_lib.speed.fused needs a C compiler ({compiler}; set CC to choose another) "
            f"to build {SOURCE.name}, and the build failed:\n{details}\n"
            "The plain course_lib.layers.LSTM computes the same without one."
        ) from error
    lib = ctypes.CDLL(str(library))
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    lib.lstm_gates_forward.argtypes = [pointer] * 5 + [size] * 2
    lib.lstm_gates_backward.argtypes = [pointer] * 7 + [size] * 2
    return lib


class LSTMRecurrence(torch.autograd.Function):
    """The time loop of one LSTM layer and direction, with the gate math in C.

    Inputs: ``x_proj`` (T, B, 4H) = W_ih x_t + b_ih + b_hh for every step, ``h0``, ``c0`` (B, H),
    ``weight_hh`` (4H, H), ``peepholes`` (3, H) (zeros for a plain LSTM). Returns the outputs
    (T, B, H), ``h_n`` and ``c_n`` (B, H).
    """

    @staticmethod
    def forward(ctx, x_proj, h0, c0, weight_hh, peepholes):
        T, B, H = x_proj.shape[0], x_proj.shape[1], h0.shape[1]
        step = kernels(x_proj.dtype).lstm_gates_forward
        acts = torch.empty_like(x_proj)  # (T, B, 4H): i, f, g, o of every step
        output = x_proj.new_empty(T, B, H)
        cells = x_proj.new_empty(T + 1, B, H)  # c_0 .. c_T
        cells[0] = c0
        h, weight_hh_t, peepholes = h0.contiguous(), weight_hh.T, peepholes.contiguous()
        for t in range(T):
            torch.addmm(x_proj[t], h, weight_hh_t, out=acts[t])  # (B, 4H) pre-activations
            step(acts[t].data_ptr(), cells[t].data_ptr(), peepholes.data_ptr(),
                 cells[t + 1].data_ptr(), output[t].data_ptr(), B, H)  # fmt: skip
            h = output[t]
        ctx.save_for_backward(acts, cells, output, h0, weight_hh, peepholes)
        return output, output[-1].clone(), cells[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n):
        acts, cells, output, h0, weight_hh, peepholes = ctx.saved_tensors
        T, B, H = acts.shape[0], acts.shape[1], h0.shape[1]
        step = kernels(acts.dtype).lstm_gates_backward
        d_output = d_output.contiguous()
        dh, dc = d_h_n.clone().contiguous(), d_c_n.clone().contiguous()
        d_gates = torch.empty_like(acts)  # (T, B, 4H): dL/da for every step
        for t in reversed(range(T)):
            dh += d_output[t]  # this step's h feeds the output and the next step
            step(acts[t].data_ptr(), cells[t].data_ptr(), cells[t + 1].data_ptr(),
                 peepholes.data_ptr(), dh.data_ptr(), dc.data_ptr(), d_gates[t].data_ptr(),
                 B, H)  # fmt: skip
            torch.mm(d_gates[t], weight_hh, out=dh)  # dL/dh_prev
        # Every step's contribution to dL/dW_hh in one matrix product: sum_t d_gates_t^T h_{t-1}.
        h_prev = torch.cat([h0.unsqueeze(0), output[:-1]])  # (T, B, H)
        d_weight_hh = d_gates.flatten(0, 1).T @ h_prev.flatten(0, 1)  # (4H, H)
        d_peepholes = None  # a plain LSTM's zero peepholes need no gradient
        if ctx.needs_input_grad[4]:
            d_i, d_f, _, d_o = d_gates.split(H, dim=-1)  # each (T, B, H)
            d_peepholes = torch.stack(
                [
                    (d_i * cells[:-1]).sum((0, 1)),  # w_ci sees c_prev
                    (d_f * cells[:-1]).sum((0, 1)),  # w_cf sees c_prev
                    (d_o * cells[1:]).sum((0, 1)),  # w_co sees the new c
                ]
            )
        return d_gates, dh, dc, d_weight_hh, d_peepholes


def _kernel_applies(x: Tensor, mask: Tensor | None, w: Weights) -> bool:
    """The C kernel takes full-length CPU float32/float64 sequences without a projection."""
    return mask is None and w.weight_hr is None and x.device.type == "cpu" and x.dtype in C_TYPES


class FusedLSTM(LSTM):
    """:class:`~course_lib.layers.LSTM` with the gate math of each step in compiled C.

    Same arguments, parameters, state dict and results; faster on the CPU (benchmarks/README.md).
    """

    def _recur(self, x, state, w, mask):
        if not _kernel_applies(x, mask, w):
            return super()._recur(x, state, w, mask)
        peepholes = x.new_zeros(3, self.hidden_size)
        return _run_fused(x, state, w, peepholes)


class FusedPeepholeLSTM(PeepholeLSTM):
    """:class:`~course_lib.layers.PeepholeLSTM` (diagonal peepholes) with the gate math in C."""

    def _recur(self, x, state, w, mask):
        if self.full or not _kernel_applies(x, mask, w):
            return super()._recur(x, state, w, mask)
        return _run_fused(x, state, w, torch.stack(w.peepholes))


def _run_fused(x, state, w, peepholes):
    h, c = state
    # As in the plain layer: every step's input projection in one matmul, both biases folded in.
    bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
    x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, 4H)
    output, h_n, c_n = LSTMRecurrence.apply(x_proj, h, c, w.weight_hh, peepholes)
    return output, (h_n, c_n)


def fused(layer: LSTM | PeepholeLSTM) -> FusedLSTM | FusedPeepholeLSTM:
    """A fused twin of ``layer`` that shares its parameters: training one trains both.

    No random numbers are drawn (constructing a new layer would draw its initial weights). The
    twin has its own ``training`` flag: call ``train()`` / ``eval()`` on the one you run.
    """
    twin: type[FusedLSTM] | type[FusedPeepholeLSTM]
    if type(layer) is LSTM:
        twin = FusedLSTM
    elif type(layer) is PeepholeLSTM:
        twin = FusedPeepholeLSTM
    else:
        raise TypeError(
            f"layer must be a course_lib.layers.LSTM or PeepholeLSTM, got {type(layer).__name__}"
        )
    fast = twin.__new__(twin)
    fast.__dict__.update(layer.__dict__)  # the same parameters, buffers, flags and hooks
    return fast

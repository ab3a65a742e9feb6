"""Time course_lib's recurrent layers against torch.nn (oneDNN on the CPU, cuDNN on the GPU).

Run ``python -m benchmarks.rnn`` (``--help`` for the options). For every layer kind, batch size B
and hidden size H (input size = H, T = 100 steps) it

1. copies torch.nn's weights into course_lib's layer and checks that outputs and input gradients
   match (TF32 off on the GPU), so only equal computations are timed;
2. times forward under ``no_grad`` and forward+backward with ``torch.utils.benchmark`` (median of
   repeated blocks, after warm-up), alternating the two implementations for several rounds so
   that a busy machine slows both alike; on one CPU thread the clock is the process's CPU time,
   which other programs on the machine barely disturb, otherwise wall time;
3. measures memory for forward+backward: on the GPU the peak allocated memory; on the CPU, where
   PyTorch keeps no allocator statistics, the bytes the autograd graph keeps for the backward pass
   (``saved_tensors_hooks``, each storage counted once) plus the outputs: what grows with T;
4. times the matrix products of one forward alone, through torch's own matmul (the "matmul
   floor", as a fraction of torch.nn's whole forward): no eager layer built on torch's matmul
   can have a forward ratio below it;
5. times the opt-in fast path of the device against torch.nn: on the CPU
   ``course_lib.speed.fused`` (the LSTMs' gate math compiled in C), on a GPU
   ``course_lib.speed.graphed.graphed`` (CUDA graphs of the same layer) and how long recording the
   graphs took.

PeepholeLSTM is compared with nn.LSTM: PyTorch has no peephole layer, so the ratio shows what the
three extra element-wise terms cost. Results are printed as a Markdown table of ratios
(course_lib / torch.nn; below 1 means course_lib is faster).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import benchmark

from course_lib import layers
from course_lib.speed.fused import fused, kernels
from course_lib.speed.graphed import graphed

KINDS = {
    "RNN": (layers.RNN, nn.RNN),
    "LSTM": (layers.LSTM, nn.LSTM),
    "GRU": (layers.GRU, nn.GRU),
    "PeepholeLSTM": (layers.PeepholeLSTM, nn.LSTM),
}


def make_pair(kind: str, hidden: int, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """(course_lib layer, torch.nn layer) with the same weights; peepholes stay at zero."""
    ours_class, torch_class = KINDS[kind]
    reference = torch_class(hidden, hidden).to(device)
    ours = ours_class(hidden, hidden).to(device)
    ours.load_state_dict(reference.state_dict(), strict=kind != "PeepholeLSTM")
    return ours, reference


def forward(layer: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        layer(x)


def forward_backward(layer: nn.Module, x: torch.Tensor) -> None:
    output, _ = layer(x)
    output.sum().backward()


def matmuls_only(layer: nn.Module, x: torch.Tensor) -> None:
    """The matrix products of one forward and nothing else: the hoisted input projection and
    one recurrent product per step. An eager layer built on torch's matmul cannot be faster."""
    w = layer.weights(0)
    with torch.no_grad():
        x_proj = F.linear(x, w.weight_ih, w.bias_ih)  # (T, B, G*H)
        h = x.new_zeros(x.shape[1], layer.hidden_size)
        weight_hh_t = w.weight_hh.T
        for x_t in x_proj.unbind(0):
            torch.addmm(x_t, h, weight_hh_t)


def check_equal(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    """Outputs and the input gradient must agree before anything is timed."""
    grads = []
    for layer in (ours, reference):
        x_leaf = x.detach().clone().requires_grad_(True)
        output, _ = layer(x_leaf)
        output.sum().backward()
        grads.append((output.detach(), x_leaf.grad))
    for a, b in zip(grads[0], grads[1]):  # float32 over T steps: summation order differs
        torch.testing.assert_close(a, b, rtol=1e-4, atol=5e-5)
    for layer in (ours, reference):
        layer.zero_grad(set_to_none=True)


def median_seconds(fn, layer, x, min_run_time: float) -> float:
    # On one CPU thread the process's CPU time measures the work itself and is barely touched by
    # other programs on the machine; with several threads (or a GPU) only wall time is meaningful.
    single_cpu_thread = x.device.type == "cpu" and torch.get_num_threads() == 1
    clock = time.process_time if single_cpu_thread else time.perf_counter
    timer = benchmark.Timer("fn(layer, x)", globals={"fn": fn, "layer": layer, "x": x}, timer=clock)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def interleaved_ratio(
    fn, ours, reference, x, rounds: int, min_run_time: float
) -> tuple[float, float, float]:
    """Median time of each over ``rounds`` alternating measurements, and their ratio."""
    fn(ours, x), fn(reference, x)  # warm-up
    times_ours, times_ref = [], []
    for _ in range(rounds):
        times_ref.append(median_seconds(fn, reference, x, min_run_time))
        times_ours.append(median_seconds(fn, ours, x, min_run_time))
    t_ours, t_ref = statistics.median(times_ours), statistics.median(times_ref)
    return t_ours, t_ref, t_ours / t_ref


def training_memory(layer: nn.Module, x: torch.Tensor) -> int:
    """Bytes for one forward+backward: peak allocated on CUDA, saved-for-backward on the CPU."""
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        forward_backward(layer, x)
        torch.cuda.synchronize()
        layer.zero_grad(set_to_none=True)
        return torch.cuda.max_memory_allocated() - before
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output, _ = layer(x)
    output.sum().backward()
    layer.zero_grad(set_to_none=True)
    # The input x is saved by both; count only what the layer itself allocates.
    storages.pop(x.untyped_storage().data_ptr(), None)
    return sum(storages.values()) + output.untyped_storage().nbytes()


def run(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for kind, batch, hidden in itertools.product(args.kinds, args.batch, args.hidden):
            torch.manual_seed(0)
            ours, reference = make_pair(kind, hidden, device)
            x = torch.randn(args.steps, batch, hidden, device=device)
            check_equal(ours, reference, x)
            row = {"kind": kind, "threads": threads, "B": batch, "H": hidden}
            for mode, fn, needs_grad in (
                ("fwd", forward, False),
                ("fwd+bwd", forward_backward, True),
            ):
                x_mode = x.detach().clone().requires_grad_(needs_grad)
                if device.type == "cuda":
                    fn = _synchronised(fn)
                t_ours, t_ref, ratio = interleaved_ratio(
                    fn, ours, reference, x_mode, args.rounds, args.min_run_time
                )
                row[f"{mode} ours ms"], row[f"{mode} torch ms"], row[f"{mode} ratio"] = (
                    t_ours * 1e3,
                    t_ref * 1e3,
                    ratio,
                )
            floor = median_seconds(matmuls_only, ours, x, args.min_run_time)
            row["matmul floor"] = floor * 1e3 / row["fwd torch ms"]
            if device.type == "cuda":
                row.update(graphed_times(ours, reference, x, args))
            else:
                row.update(fused_times(ours, reference, x, args))
            x_grad = x.detach().clone().requires_grad_(True)
            row["memory ratio"] = training_memory(ours, x_grad) / training_memory(reference, x_grad)
            rows.append(row)
            print(format_row(row, columns(device)), flush=True)
    return rows


def fused_times(ours, reference, x, args) -> dict:
    """course_lib.speed.fused (the LSTMs' gate math compiled) against torch.nn, on the CPU."""
    if not isinstance(ours, (layers.LSTM, layers.PeepholeLSTM)):
        return dict.fromkeys(FUSED_COLUMNS, "–")
    fast = fused(ours)
    row = {}
    for mode, fn, needs_grad in (("fwd", forward, False), ("fwd+bwd", forward_backward, True)):
        x_mode = x.detach().clone().requires_grad_(needs_grad)
        _, _, row[f"fused {mode} ratio"] = interleaved_ratio(
            fn, fast, reference, x_mode, args.rounds, args.min_run_time
        )
    x_grad = x.detach().clone().requires_grad_(True)
    row["fused memory ratio"] = training_memory(fast, x_grad) / training_memory(reference, x_grad)
    return row


def graphed_times(ours, reference, x, args) -> dict:
    """course_lib.speed.graphed (CUDA graphs of our layer) against cuDNN, and the recording time."""
    row = {}
    for mode, fn, needs_grad in (("fwd", forward, False), ("fwd+bwd", forward_backward, True)):
        x_mode = x.detach().clone().requires_grad_(needs_grad)
        torch.cuda.synchronize()
        start = time.perf_counter()
        replay = graphed(ours, x_mode)
        torch.cuda.synchronize()
        row[f"record {mode} s"] = time.perf_counter() - start
        _, _, row[f"graphed {mode} ratio"] = interleaved_ratio(
            _synchronised(fn), replay, reference, x_mode, args.rounds, args.min_run_time
        )
    return row


def _synchronised(fn):
    def timed(layer, x):
        fn(layer, x)
        torch.cuda.synchronize()

    return timed


COLUMNS = ["kind", "threads", "B", "H", "fwd ours ms", "fwd torch ms", "fwd ratio",
           "fwd+bwd ours ms", "fwd+bwd torch ms", "fwd+bwd ratio", "memory ratio",
           "matmul floor"]  # fmt: skip


GRAPHED_COLUMNS = ["graphed fwd ratio", "graphed fwd+bwd ratio", "record fwd+bwd s"]


FUSED_COLUMNS = ["fused fwd ratio", "fused fwd+bwd ratio", "fused memory ratio"]


def columns(device: torch.device) -> list[str]:
    """The table's columns, and the opt-in fast path of the device: fused (CPU) or graphed (GPU)."""
    return COLUMNS + (GRAPHED_COLUMNS if device.type == "cuda" else FUSED_COLUMNS)


def format_row(row: dict, names: list[str]) -> str:
    cells = [f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in names]
    return "| " + " | ".join(cells) + " |"


def fused_build_seconds() -> float:
    """Compile course_lib.speed.fused's kernel from scratch, in a throwaway cache; its wall time."""
    saved = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_CACHE_HOME"] = scratch
        kernels.cache_clear()
        start = time.perf_counter()
        kernels(torch.float32)
        seconds = time.perf_counter() - start
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved
    kernels.cache_clear()  # later calls load the usual cached build
    return seconds


def header(args: argparse.Namespace) -> str:
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    build = (
        "" if device.type == "cuda" else f"; fused kernel compiled in {fused_build_seconds():.2f} s"
    )
    lines = [
        f"Machine: {name}, {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
        f"device {device}; T={args.steps}; rounds={args.rounds}; {time.strftime('%Y-%m-%d')}"
        f"{build}",
        "",
        "| " + " | ".join(columns(device)) + " |",
        "|" + "---|" * len(columns(device)),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--batch", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--steps", type=int, default=100, help="sequence length T")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per pair")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="one small size, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.hidden, args.threads, args.rounds, args.min_run_time = (
            [8],
            [32],
            [1],
            1,
            0.05,
        )
        args.steps = 10
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(header(args), flush=True)
    rows = run(args)
    worst = {mode: max(r[f"{mode} ratio"] for r in rows) for mode in ("fwd", "fwd+bwd")}
    print(f"\nworst ratios: forward {worst['fwd']:.2f}, forward+backward {worst['fwd+bwd']:.2f}, "
          f"memory {max(r['memory ratio'] for r in rows):.2f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

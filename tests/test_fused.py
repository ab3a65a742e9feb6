"""course_lib.speed.fused: the LSTMs with their gate math compiled in C match the plain ones."""

import itertools

import pytest
import torch

from course_lib.layers import GRU, LSTM, PeepholeLSTM
from course_lib.speed import fused as fused_module
from course_lib.speed.fused import FusedLSTM, FusedPeepholeLSTM, LSTMRecurrence, fused

I, H, T, B = 5, 6, 7, 4
PAIRS = {"lstm": (LSTM, FusedLSTM), "peephole": (PeepholeLSTM, FusedPeepholeLSTM)}


def make_pair(kind, dtype=torch.float64, **kwargs):
    """A course_lib layer and its fused twin; peepholes made non-zero so that they matter."""
    plain = PAIRS[kind][0](I, H, **kwargs).to(dtype)
    with torch.no_grad():
        for name, parameter in plain.named_parameters():
            if name.startswith(("weight_ci", "weight_cf", "weight_co")):
                parameter.normal_(0, 0.5)
    return plain, fused(plain)


def run(layer, x, hx, **kwargs):
    output, (h_n, c_n) = layer(x, hx, **kwargs)
    weights = torch.linspace(-1, 1, output.shape[-1], dtype=output.dtype)
    loss = (output * weights).sum() + h_n.square().sum() + c_n.square().sum()
    grads = torch.autograd.grad(loss, [x, *hx, *layer.parameters()])
    return (output, h_n, c_n, *grads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "num_layers, bidirectional, batch_first",
    list(itertools.product([1, 2], [False, True], [False, True])),
)
@pytest.mark.parametrize("kind", list(PAIRS))
def test_fused_layer_matches_the_plain_layer(kind, num_layers, bidirectional, batch_first, dtype):
    torch.manual_seed(0)
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    plain, fast = make_pair(kind, dtype, **kwargs)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype, requires_grad=True)
    D = 2 if bidirectional else 1
    hx = tuple(torch.randn(D * num_layers, B, H, dtype=dtype, requires_grad=True) for _ in "hc")
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    for expected, got in zip(run(plain, x, hx), run(fast, x, hx)):
        torch.testing.assert_close(got, expected, **tolerance)


def test_recurrence_gradcheck_float64_with_peepholes():
    torch.manual_seed(0)
    x_proj = torch.randn(5, 3, 4 * 2, dtype=torch.float64, requires_grad=True)
    h0, c0, peepholes = (
        torch.randn(n, 2, dtype=torch.float64, requires_grad=True) for n in (3, 3, 3)
    )
    weight_hh = torch.randn(4 * 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LSTMRecurrence.apply, (x_proj, h0, c0, weight_hh, peepholes))


@pytest.mark.parametrize("kind", list(PAIRS))
def test_where_the_kernel_does_not_apply_the_plain_loop_runs(kind, monkeypatch):
    torch.manual_seed(0)
    plain, fast = make_pair(kind, bidirectional=True)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(2, B, H, dtype=torch.float64, requires_grad=True) for _ in "hc")
    monkeypatch.setattr(LSTMRecurrence, "apply", None)  # any use of the kernel would fail
    lengths = torch.tensor([7, 3, 5, 1])
    for expected, got in zip(
        run(plain, x, hx, lengths=lengths), run(fast, x, hx, lengths=lengths), strict=True
    ):
        torch.testing.assert_close(got, expected)


def test_full_peepholes_use_the_plain_loop(monkeypatch):
    torch.manual_seed(0)
    plain = PeepholeLSTM(I, H, full=True).double()
    monkeypatch.setattr(LSTMRecurrence, "apply", None)
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.testing.assert_close(fused(plain)(x)[0], plain(x)[0])


def test_fused_twin_shares_parameters_and_state_dict():
    plain = LSTM(I, H, num_layers=2)
    fast = fused(plain)
    assert isinstance(fast, FusedLSTM)
    assert all(p is q for p, q in zip(plain.parameters(), fast.parameters(), strict=True))
    assert fast.state_dict().keys() == plain.state_dict().keys()
    with torch.no_grad():
        fast.weight_hh_l1.add_(1.0)  # training one trains both
    torch.testing.assert_close(plain.weight_hh_l1, fast.weight_hh_l1)
    with pytest.raises(TypeError, match="layer must be a course_lib.layers.LSTM or PeepholeLSTM"):
        fused(GRU(I, H))


def test_a_missing_compiler_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fused_module.kernels.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="needs a C compiler .*no-such-cc.*set CC"):
            fused_module.kernels(torch.float32)
    finally:
        fused_module.kernels.cache_clear()


def test_a_compiler_without_the_vector_flags_still_builds(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fused_module, "_arch_flags", lambda: ["-mno-such-option"])
    fused_module.kernels.cache_clear()
    try:
        library = fused_module.kernels(torch.float64)
        assert hasattr(library, "lstm_gates_forward")
        assert len(list((tmp_path / "course_lib").glob("*.so"))) == 1  # only the plain build
    finally:
        fused_module.kernels.cache_clear()


@pytest.mark.parametrize("kind", list(PAIRS))
def test_projections_use_the_plain_loop(kind, monkeypatch):
    """The kernel assumes h has H features; with proj_size the plain loop runs instead."""
    torch.manual_seed(0)
    plain, fast = make_pair(kind, proj_size=2, num_layers=2)
    monkeypatch.setattr(LSTMRecurrence, "apply", None)  # any use of the kernel would fail
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(2, B, n, dtype=torch.float64, requires_grad=True) for n in (2, H))
    for expected, got in zip(run(plain, x, hx), run(fast, x, hx), strict=True):
        torch.testing.assert_close(got, expected)

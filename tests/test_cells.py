"""course_lib.cells against torch.nn: copied weights give the same outputs and gradients."""

import pytest
import torch
from torch import nn

from course_lib.cells import GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell

DTYPES = [torch.float32, torch.float64]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]
PAIRS = [
    (RNNCell, nn.RNNCell, {}),
    (RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    (LSTMCell, nn.LSTMCell, {}),
    (GRUCell, nn.GRUCell, {}),
    (LSTMCell, nn.LSTMCell, {"bias": False}),
]


def _state(ours_out):
    return ours_out if isinstance(ours_out, tuple) else (ours_out,)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_class, torch_class, kwargs", PAIRS)
def test_cell_matches_torch_forward_and_grad(ours_class, torch_class, kwargs, dtype, device):
    torch.manual_seed(0)
    reference = torch_class(5, 7, **kwargs).to(device, dtype)
    ours = ours_class(5, 7, **kwargs).to(device, dtype)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 5, dtype=dtype, device=device, requires_grad=True)
    h0 = torch.randn(3, 7, dtype=dtype, device=device)
    hx = (h0, torch.randn_like(h0)) if torch_class is nn.LSTMCell else h0

    expected, got = _state(reference(x, hx)), _state(ours(x, hx))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)

    loss_ref = sum(t.square().sum() for t in expected)
    loss_ours = sum(t.square().sum() for t in got)
    grads_ref = torch.autograd.grad(loss_ref, [x, *reference.parameters()])
    grads_ours = torch.autograd.grad(loss_ours, [x, *ours.parameters()])
    for e, g in zip(grads_ref, grads_ours):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("ours_class, torch_class, kwargs", PAIRS)
def test_state_dict_loads_both_ways_and_unbatched_input(ours_class, torch_class, kwargs):
    ours = ours_class(4, 6, **kwargs)
    reference = torch_class(4, 6, **kwargs)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(4)
    for e, g in zip(_state(reference(x)), _state(ours(x))):
        assert g.shape == (6,)
        torch.testing.assert_close(g, e)


def test_step_returns_the_gates_it_used():
    torch.manual_seed(1)
    cell = LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    (h_new, c_new), gates = cell.step(x, (h, c))
    assert set(gates) == {"i", "f", "g", "o", "c", "h"}
    torch.testing.assert_close(c_new, gates["f"] * c + gates["i"] * gates["g"])
    torch.testing.assert_close(h_new, gates["o"] * torch.tanh(c_new))
    for name in "ifo":
        assert ((gates[name] > 0) & (gates[name] < 1)).all()

    _, gru_gates = GRUCell(3, 4).step(x, h)
    assert set(gru_gates) == {"r", "z", "n", "h"}
    _, rnn_gates = RNNCell(3, 4).step(x, h)
    assert set(rnn_gates) == {"h"}


def test_forget_bias_sets_the_sum_of_both_biases():
    cell = LSTMCell(3, 5, forget_bias=3.0)
    forget = slice(5, 10)
    total = cell.bias_ih[forget] + cell.bias_hh[forget]
    torch.testing.assert_close(total, torch.full((5,), 3.0))
    # The other gates keep torch.nn's initialisation.
    assert not torch.allclose(cell.bias_ih[:5], torch.zeros(5))
    with pytest.raises(ValueError, match="forget_bias"):
        LSTMCell(3, 5, bias=False, forget_bias=1.0)


@pytest.mark.parametrize("full", [False, True])
def test_peephole_with_zero_peepholes_is_an_lstm(full):
    torch.manual_seed(2)
    lstm = nn.LSTMCell(4, 6)
    peephole = PeepholeLSTMCell(4, 6, full=full)
    result = peephole.load_state_dict(lstm.state_dict(), strict=False)
    assert set(result.missing_keys) == {"weight_ci", "weight_cf", "weight_co"}
    ours_lstm = LSTMCell(4, 6)
    ours_lstm.load_state_dict(lstm.state_dict())
    x, h, c = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    for reference, same, got in zip(lstm(x, (h, c)), ours_lstm(x, (h, c)), peephole(x, (h, c))):
        assert torch.equal(got, same)  # bit for bit equal to course_lib's LSTM cell
        torch.testing.assert_close(got, reference)


def test_peephole_parameter_counts():
    H, I = 8, 5
    lstm = sum(p.numel() for p in LSTMCell(I, H).parameters())
    diagonal = sum(p.numel() for p in PeepholeLSTMCell(I, H).parameters())
    full = sum(p.numel() for p in PeepholeLSTMCell(I, H, full=True).parameters())
    assert diagonal - lstm == 3 * H
    assert full - lstm == 3 * H * H


@pytest.mark.parametrize("full", [False, True])
def test_peephole_gradcheck_float64(full):
    torch.manual_seed(3)
    cell = PeepholeLSTMCell(3, 4, full=full).double()
    with torch.no_grad():
        for name in ("weight_ci", "weight_cf", "weight_co"):
            getattr(cell, name).normal_()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    peepholes = (cell.weight_ci, cell.weight_cf, cell.weight_co)

    def step(x, h, c, w_ci, w_cf, w_co):
        params = {"weight_ci": w_ci, "weight_cf": w_cf, "weight_co": w_co}
        return torch.func.functional_call(cell, params, (x, (h, c)), strict=False)

    inputs = (x, h, c, *(p.detach().clone().requires_grad_(True) for p in peepholes))
    assert torch.autograd.gradcheck(step, inputs)


def test_peephole_sees_old_cell_for_i_f_and_new_cell_for_o():
    torch.manual_seed(4)
    cell = PeepholeLSTMCell(2, 3)
    with torch.no_grad():
        cell.weight_ci.fill_(0.5)
        cell.weight_cf.fill_(-0.7)
        cell.weight_co.fill_(0.9)
    x, h, c = torch.randn(1, 2), torch.randn(1, 3), torch.randn(1, 3)
    (_, c_new), gates = cell.step(x, (h, c))
    pre = x @ cell.weight_ih.T + h @ cell.weight_hh.T + cell.bias_ih + cell.bias_hh
    pre_i, pre_f, _, pre_o = pre.chunk(4, dim=1)
    torch.testing.assert_close(gates["i"], torch.sigmoid(pre_i + 0.5 * c))
    torch.testing.assert_close(gates["f"], torch.sigmoid(pre_f - 0.7 * c))
    torch.testing.assert_close(gates["o"], torch.sigmoid(pre_o + 0.9 * c_new))


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_class", [RNNCell, LSTMCell, GRUCell, PeepholeLSTMCell])
def test_bad_inputs_name_the_argument(cell_class):
    cell = cell_class(3, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\).*got \(2, 5\)"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match="x must have shape"):
        cell(torch.randn(2, 1, 3))
    with pytest.raises(TypeError, match="x must be a floating-point tensor.*torch.int64"):
        cell(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(
        TypeError, match="x has dtype torch.float64 but the parameters are torch.float32"
    ):
        cell(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        cell([[1.0, 2.0, 3.0]])
    bad_state = torch.randn(3, 4)  # batch of 3 for an input batch of 2
    hx = (bad_state, bad_state) if isinstance(cell, LSTMCell) else bad_state
    with pytest.raises(ValueError, match=r"must have shape \(2, 4\), got \(3, 4\)"):
        cell(torch.randn(2, 3), hx)


def test_lstm_hx_must_be_a_pair():
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
        LSTMCell(3, 4)(torch.randn(2, 3), torch.randn(2, 4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
        LSTMCell(3, 0)
    with pytest.raises(ValueError, match="input_size must be a positive int"):
        GRUCell(2.5, 3)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_mixed_devices_are_refused():
    cell = LSTMCell(3, 4).cuda()
    with pytest.raises(ValueError, match="x is on cpu but the parameters are on cuda"):
        cell(torch.randn(2, 3))


def test_mixed_devices_are_refused_on_cpu_too():
    # A 'meta' tensor stands in for another device on machines without a GPU.
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match="x is on meta but the parameters are on cpu"):
        cell(torch.randn(2, 3, device="meta"))

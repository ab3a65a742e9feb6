"""course_lib.cells: each equation against a step computed by hand, and against torch.nn.

The hand-computed steps slice every weight matrix into its gates explicitly (W_ii = rows 0..H of
weight_ih, ...) and write each equation out, so a wrong gate order, activation or wiring in
cells.py makes them fail; torch.nn is a second, independent reference.
"""

import inspect

import pytest
import torch
from helpers import DEVICES, flat, needs_cuda
from torch import nn

from course_lib.cells import GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell

DTYPES = [torch.float32, torch.float64]
PAIRS = [
    (RNNCell, nn.RNNCell, {}),
    (RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    (LSTMCell, nn.LSTMCell, {}),
    (GRUCell, nn.GRUCell, {}),
    (LSTMCell, nn.LSTMCell, {"bias": False}),
]


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

    expected, got = flat(reference(x, hx)), flat(ours(x, hx))
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
    for e, g in zip(flat(reference(x)), flat(ours(x))):
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
    hx = (bad_state, bad_state) if cell_class in (LSTMCell, PeepholeLSTMCell) else bad_state
    with pytest.raises(ValueError, match=r"must have shape \(2, 4\), got \(3, 4\)"):
        cell(torch.randn(2, 3), hx)


def test_lstm_hx_must_be_a_pair():
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
        LSTMCell(3, 4)(torch.randn(2, 3), torch.randn(2, 4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
        LSTMCell(3, 0)
    with pytest.raises(TypeError, match="input_size must be an int, got float 2.5"):
        GRUCell(2.5, 3)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="bias must be a bool"):
        GRUCell(3, 4, bias="False")  # a non-empty string would read as True
    with pytest.raises(TypeError, match="full must be a bool"):
        PeepholeLSTMCell(3, 4, full=1)
    with pytest.raises(TypeError, match="forget_bias must be a number"):
        LSTMCell(3, 4, forget_bias="3")


@needs_cuda
def test_mixed_devices_are_refused():
    cell = LSTMCell(3, 4).cuda()
    with pytest.raises(ValueError, match="x is on cpu but the parameters are on cuda"):
        cell(torch.randn(2, 3))


def test_mixed_devices_are_refused_on_cpu_too():
    # A 'meta' tensor stands in for another device on machines without a GPU.
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match="x is on meta but the parameters are on cpu"):
        cell(torch.randn(2, 3, device="meta"))


# --- the equations, step by step, by hand -----------------------------------------------------


def _blocks(cell, count):
    """Each gate's slice of the parameters, in stored order: [(W_i*, W_h*, b_i* + b_h*), ...]."""
    H = cell.hidden_size
    blocks = []
    for k in range(count):
        rows = slice(k * H, (k + 1) * H)
        bias = cell.bias_ih[rows] + cell.bias_hh[rows]
        blocks.append((cell.weight_ih[rows], cell.weight_hh[rows], bias))
    return blocks


def _affine(block, x, h):
    W_i, W_h, b = block
    return x @ W_i.T + h @ W_h.T + b


def _random_cell(cell_class, **kwargs):
    torch.manual_seed(11)
    cell = cell_class(3, 4, **kwargs).double()
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.normal_()  # peepholes too, so that every term matters
    x, h, c = (torch.randn(2, n, dtype=torch.float64) for n in (3, 4, 4))
    return cell, x, h, c


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_step_by_hand(nonlinearity):
    cell, x, h, _ = _random_cell(RNNCell, nonlinearity=nonlinearity)
    (block,) = _blocks(cell, 1)
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    torch.testing.assert_close(cell(x, h), act(_affine(block, x, h)))


def test_lstm_cell_step_by_hand():
    cell, x, h, c = _random_cell(LSTMCell)
    gate_i, gate_f, gate_g, gate_o = _blocks(cell, 4)  # the stored order is i|f|g|o
    i = torch.sigmoid(_affine(gate_i, x, h))
    f = torch.sigmoid(_affine(gate_f, x, h))
    g = torch.tanh(_affine(gate_g, x, h))
    o = torch.sigmoid(_affine(gate_o, x, h))
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    (h_got, c_got), gates = cell.step(x, (h, c))
    torch.testing.assert_close(c_got, c_new)
    torch.testing.assert_close(h_got, h_new)
    for name, expected in zip("ifgo", (i, f, g, o)):
        torch.testing.assert_close(gates[name], expected, msg=f"gate {name}")


def test_gru_cell_step_by_hand_with_pytorchs_reset_placement():
    cell, x, h, _ = _random_cell(GRUCell)
    H = cell.hidden_size
    W_ir, W_iz, W_in = cell.weight_ih.split(H)  # the stored order is r|z|n
    W_hr, W_hz, W_hn = cell.weight_hh.split(H)
    b_ir, b_iz, b_in = cell.bias_ih.split(H)
    b_hr, b_hz, b_hn = cell.bias_hh.split(H)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))  # r multiplies W_hn h + b_hn
    h_new = (1 - z) * n + z * h
    h_got, gates = cell.step(x, h)
    torch.testing.assert_close(h_got, h_new)
    torch.testing.assert_close(gates["n"], n)
    # Cho et al.'s placement, W_hn (r * h) + b_hn, gives another candidate: the test can tell.
    n_paper = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    assert not torch.allclose(gates["n"], n_paper)


@pytest.mark.parametrize("full", [False, True])
def test_peephole_cell_step_by_hand(full):
    """c_{t-1} feeds i and f, the new c_t feeds o; diagonal w * c or full W c."""
    cell, x, h, c = _random_cell(PeepholeLSTMCell, full=full)

    def peek(weight, state):
        return state @ weight.T if full else weight * state

    gate_i, gate_f, gate_g, gate_o = _blocks(cell, 4)
    i = torch.sigmoid(_affine(gate_i, x, h) + peek(cell.weight_ci, c))
    f = torch.sigmoid(_affine(gate_f, x, h) + peek(cell.weight_cf, c))
    g = torch.tanh(_affine(gate_g, x, h))
    c_new = f * c + i * g
    o = torch.sigmoid(_affine(gate_o, x, h) + peek(cell.weight_co, c_new))
    h_new = o * torch.tanh(c_new)
    (h_got, c_got), gates = cell.step(x, (h, c))
    for name, expected in zip("ifgo", (i, f, g, o)):
        torch.testing.assert_close(gates[name], expected, msg=f"gate {name}")
    torch.testing.assert_close(c_got, c_new)
    torch.testing.assert_close(h_got, h_new)


def test_each_peephole_reaches_only_its_own_gate():
    """Perturb one peephole weight at a time: its gate moves, and o through the new c_t."""
    cell, x, h, c = _random_cell(PeepholeLSTMCell)
    _, before = cell.step(x, (h, c))
    moved = {}
    for name in ("weight_ci", "weight_cf", "weight_co"):
        with torch.no_grad():
            getattr(cell, name).add_(0.5)
        _, after = cell.step(x, (h, c))
        with torch.no_grad():
            getattr(cell, name).sub_(0.5)
        moved[name] = {gate for gate in "ifgo" if not torch.allclose(after[gate], before[gate])}
    # w_ci and w_cf move their gate, hence c_t, hence o (which sees c_t); w_co moves o alone,
    # since o comes after c_t: nothing of the step before it may change.
    assert moved == {"weight_ci": {"i", "o"}, "weight_cf": {"f", "o"}, "weight_co": {"o"}}


# --- the torch.nn contract ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, reference",
    [(RNNCell, nn.RNNCell), (LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)],
)
def test_constructor_has_torchs_positional_order(ours, reference):
    def positional(cls):
        return [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
        ]

    assert positional(ours) == positional(reference)
    assert positional(PeepholeLSTMCell) == positional(nn.LSTMCell)


def test_course_extensions_are_keyword_only():
    with pytest.raises(TypeError):
        LSTMCell(3, 4, True, None, None, 3.0)  # forget_bias can never be passed by position
    with pytest.raises(TypeError):
        PeepholeLSTMCell(3, 4, True, None, None, None, True)


@pytest.mark.parametrize("cell_class", [RNNCell, LSTMCell, GRUCell, PeepholeLSTMCell])
def test_factory_keywords_and_same_seed_as_torch(cell_class):
    cell = cell_class(3, 4, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 for p in cell.parameters())
    assert cell_class(3, 4, device="meta").weight_ih.is_meta
    reference_class = {RNNCell: nn.RNNCell, GRUCell: nn.GRUCell}.get(cell_class, nn.LSTMCell)
    torch.manual_seed(12)
    reference, after_reference = reference_class(3, 4), torch.rand(2)
    torch.manual_seed(12)
    ours, after_ours = cell_class(3, 4), torch.rand(2)
    for name, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    assert torch.equal(after_ours, after_reference)  # the peepholes draw no random numbers

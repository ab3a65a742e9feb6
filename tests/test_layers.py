"""course_lib.layers against torch.nn: same state dicts, outputs, final states and gradients;
the peephole layer's recurrence against its cell stepped by hand; torch.nn's constructor contract.
"""

import contextlib
import inspect
import itertools

import pytest
import torch
from helpers import DEVICES, assert_same_results, copy_weights, flat, needs_cuda, weighted_loss
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.layers import GRU, LSTM, RNN, PeepholeLSTM, reverse_time

KINDS = {
    "rnn": (RNN, nn.RNN),
    "lstm": (LSTM, nn.LSTM),
    "gru": (GRU, nn.GRU),
    "peephole": (PeepholeLSTM, nn.LSTM),
}
I, H, T, B = 5, 6, 7, 4


def make_pair(kind, device="cpu", dtype=torch.float32, **kwargs):
    """A torch.nn layer and ours with the same weights (peepholes, which torch lacks, at zero)."""
    ours_class, torch_class = KINDS[kind]
    reference = torch_class(I, H, **kwargs).to(device, dtype)
    ours = ours_class(I, H, **kwargs).to(device, dtype)
    copy_weights(ours, reference)
    return ours, reference


def torch_kernels(device):
    """torch.nn's own kernels: on a GPU, with cuDNN switched off.

    Even with TF32 off, cuDNN's float32 weight gradients are about 1e-5 (relative) from the
    float64 result, against about 1e-7 for course_lib and torch's own CUDA kernels (measured on
    an H100), so exact comparisons use the latter; test_cudnn_agrees_within_its_precision checks
    cuDNN itself.
    """
    return (
        torch.backends.cudnn.flags(enabled=False) if device == "cuda" else contextlib.nullcontext()
    )


def assert_same_gradients(ours, reference, x, ours_out, ref_out, **tolerance):
    """Gradients of x and of every parameter, for results computed from different inputs."""
    params_ours = dict(ours.named_parameters())
    names = [name for name, _ in reference.named_parameters()]
    loss_ref = weighted_loss(ref_out[0], *flat(ref_out[1]))
    loss_ours = weighted_loss(ours_out[0], *flat(ours_out[1]))
    grads_ref = torch.autograd.grad(loss_ref, [x, *reference.parameters()])
    grads_ours = torch.autograd.grad(loss_ours, [x, *(params_ours[n] for n in names)])
    for name, e, g in zip(["x", *names], grads_ref, grads_ours):
        torch.testing.assert_close(
            g, e, **tolerance, msg=lambda m, name=name: f"gradient of {name}: {m}"
        )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "num_layers, bidirectional, batch_first",
    list(itertools.product([1, 2], [False, True], [False, True])),
)
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_matches_torch(kind, num_layers, bidirectional, batch_first, dtype, device):
    torch.manual_seed(0)
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    ours, reference = make_pair(kind, device, dtype, **kwargs)
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, dtype=dtype, device=device, requires_grad=True)
    D = 2 if bidirectional else 1
    h0 = torch.randn(D * num_layers, B, H, dtype=dtype, device=device)
    hx = (h0, torch.randn_like(h0)) if kind in ("lstm", "peephole") else h0

    with torch_kernels(device):
        assert_same_results(ours, reference, (x, hx), (x,))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("kind", list(KINDS))
def test_cudnn_agrees_within_its_precision(kind):
    """Against cuDNN itself, in float32 with TF32 off: within cuDNN's own ~1e-5 error."""
    torch.manual_seed(0)
    ours, reference = make_pair(kind, "cuda", num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I, device="cuda", requires_grad=True)
    ref_out, ours_out = reference(x), ours(x)
    for e, g in zip((ref_out[0], *flat(ref_out[1])), (ours_out[0], *flat(ours_out[1]))):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert_same_gradients(ours, reference, x, ours_out, ref_out, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_lengths_match_torch_on_packed_sequences(kind, batch_first, device):
    """Bidirectional, two layers, lengths unsorted: equal to torch.nn on pack_padded_sequence."""
    torch.manual_seed(1)
    ours, reference = make_pair(
        kind, device, num_layers=2, bidirectional=True, batch_first=batch_first
    )
    lengths = torch.tensor([3, 7, 1, 5])
    x = torch.randn((B, T, I) if batch_first else (T, B, I), device=device, requires_grad=True)

    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    with torch_kernels(device):
        packed_out, ref_hidden = reference(packed)
        ref_output, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=T)
        output, hidden = ours(x, lengths=lengths)

        torch.testing.assert_close(output, ref_output)  # zeros past each sequence's end included
        for e, g in zip(flat(ref_hidden), flat(hidden)):
            torch.testing.assert_close(g, e)
        assert_same_gradients(ours, reference, x, (output, hidden), (ref_output, ref_hidden))


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_packed_sequence_in_packed_sequence_out(kind, enforce_sorted):
    torch.manual_seed(2)
    ours, reference = make_pair(kind, bidirectional=True)
    lengths = torch.tensor([7, 5, 5, 2]) if enforce_sorted else torch.tensor([5, 7, 2, 5])
    packed = pack_padded_sequence(torch.randn(T, B, I), lengths, enforce_sorted=enforce_sorted)
    ref_out, ref_hidden = reference(packed)
    out, hidden = ours(packed)
    assert torch.equal(out.batch_sizes, ref_out.batch_sizes)
    assert (out.sorted_indices is None) == (ref_out.sorted_indices is None)
    torch.testing.assert_close(out.data, ref_out.data)
    for e, g in zip(flat(ref_hidden), flat(hidden)):
        torch.testing.assert_close(g, e)


def test_padding_never_leaks_into_the_result():
    torch.manual_seed(3)
    layer = LSTM(I, H, bidirectional=True)
    lengths = torch.tensor([4, 7, 2, 7])
    x = torch.randn(T, B, I)
    noisy = x.clone()
    for b, length in enumerate(lengths):
        noisy[length:, b] = 1e3  # garbage in the padding
    out_clean, (h_clean, c_clean) = layer(x, lengths=lengths)
    out_noisy, (h_noisy, c_noisy) = layer(noisy, lengths=lengths)
    torch.testing.assert_close(out_noisy, out_clean)
    torch.testing.assert_close(h_noisy, h_clean)
    for b, length in enumerate(lengths):
        assert out_clean[length:, b].abs().sum() == 0


def test_reverse_direction_starts_at_each_true_end():
    """The reverse direction of a padded sequence equals the reverse direction of it alone."""
    torch.manual_seed(4)
    layer = GRU(I, H, bidirectional=True)
    x = torch.randn(T, 2, I)
    out, h_n = layer(x, lengths=[3, 7])
    alone, h_alone = layer(x[:3, :1])
    torch.testing.assert_close(out[:3, :1], alone)
    torch.testing.assert_close(h_n[:, :1], h_alone)


def test_reverse_time_is_its_own_inverse():
    x = torch.arange(12.0).reshape(4, 3, 1)
    lengths = torch.tensor([4, 2, 1])
    flipped = reverse_time(x, lengths)
    assert flipped[:, 1, 0].tolist() == [4.0, 1.0, 7.0, 10.0]  # [1, 4] reversed, padding kept
    assert torch.equal(reverse_time(flipped, lengths), x)
    assert torch.equal(reverse_time(x, None), x.flip(0))


@pytest.mark.parametrize("full", [False, True])
def test_peephole_layer_with_zero_peepholes_equals_our_lstm_exactly(full):
    torch.manual_seed(5)
    lstm = LSTM(I, H, num_layers=2, bidirectional=True)
    peephole = PeepholeLSTM(I, H, num_layers=2, bidirectional=True, full=full)
    missing = peephole.load_state_dict(lstm.state_dict(), strict=False).missing_keys
    assert len(missing) == 3 * 2 * 2 and all(k.startswith("weight_c") for k in missing)
    x = torch.randn(T, B, I)
    (out_a, (h_a, c_a)), (out_b, (h_b, c_b)) = lstm(x), peephole(x)
    assert torch.equal(out_a, out_b) and torch.equal(h_a, h_b) and torch.equal(c_a, c_b)


def test_state_dict_keys_and_shapes_match_torch():
    ours = LSTM(I, H, num_layers=2, bidirectional=True)
    reference = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    reference.load_state_dict(ours.state_dict())  # and back again


def test_unbatched_input():
    torch.manual_seed(7)
    ours, reference = make_pair("lstm", num_layers=2)
    x = torch.randn(T, I)
    (out, (h, c)), (ref_out, (ref_h, ref_c)) = ours(x), reference(x)
    assert out.shape == (T, H) and h.shape == (2, H)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(c, ref_c)


def test_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(8)
    x = torch.randn(T, B, I)
    with pytest.warns(UserWarning, match="between stacked layers"):
        single = LSTM(I, H, dropout=0.5)
    assert torch.equal(single.train()(x)[0], single.eval()(x)[0])  # nothing to drop between
    stacked = LSTM(I, H, num_layers=2, dropout=0.5)
    assert not torch.equal(stacked.train()(x)[0], stacked.eval()(x)[0])
    assert torch.equal(stacked.eval()(x)[0], stacked.eval()(x)[0])


@pytest.mark.parametrize("layer_class", [LSTM, PeepholeLSTM])
def test_forget_bias_in_every_layer_and_direction(layer_class):
    layer = layer_class(I, H, num_layers=2, bidirectional=True, forget_bias=3.0)
    for name, bias in layer.named_parameters():
        if name.startswith("bias_ih"):
            other = layer.get_parameter(name.replace("bias_ih", "bias_hh"))
            torch.testing.assert_close(bias[H : 2 * H] + other[H : 2 * H], torch.full((H,), 3.0))
        if name.startswith("weight_c"):
            assert not bias.any(), f"{name} must start at zero"


@pytest.mark.parametrize("kind", list(KINDS))
def test_gate_trace_matches_the_layer(kind):
    torch.manual_seed(9)
    layer = KINDS[kind][0](I, H, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I)
    output, _ = layer(x)
    for reverse in (False, True):
        trace = layer.gate_trace(x, layer=1, reverse=reverse)
        half = output[..., H:] if reverse else output[..., :H]
        torch.testing.assert_close(trace["h"], half)  # (B, T, H), batch first like the layer
    expected = {"rnn": {"h"}, "gru": {"r", "z", "n", "h"}}.get(kind, {"i", "f", "g", "o", "c", "h"})
    assert set(trace) == expected


def test_cell_shares_parameters():
    layer = LSTM(I, H, num_layers=2)
    cell = layer.cell(layer=1)
    assert cell.weight_hh is layer.weight_hh_l1
    with pytest.raises(ValueError, match="layer must be in 0..1, got 2"):
        layer.cell(layer=2)
    with pytest.raises(ValueError, match="reverse=True needs a bidirectional layer"):
        layer.cell(reverse=True)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_inputs_name_the_argument(kind):
    layer = KINDS[kind][0](I, H, num_layers=2)
    x = torch.randn(T, B, I)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, I\).*I=5, got \(7, 4, 3\)"):
        layer(torch.randn(T, B, 3))
    with pytest.raises(ValueError, match=r"T=0"):
        layer(torch.randn(0, B, I))
    with pytest.raises(ValueError, match="empty batch"):
        layer(torch.randn(T, 0, I))
    with pytest.raises(TypeError, match="x must be a floating-point tensor.*torch.int64"):
        layer(torch.ones(T, B, I, dtype=torch.int64))
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        layer(x.double())
    with pytest.raises(ValueError, match="x is on meta but the parameters are on cpu"):
        layer(x.to("meta"))
    with pytest.raises(ValueError, match="every length must be between 1 and T=7, got min 0"):
        layer(x, lengths=[3, 0, 2, 1])
    with pytest.raises(ValueError, match="every length must be between 1 and T=7.*max 8"):
        layer(x, lengths=[3, 8, 2, 1])
    with pytest.raises(ValueError, match=r"lengths must have shape \(4,\).*got \(3,\)"):
        layer(x, lengths=[3, 2, 1])
    with pytest.raises(TypeError, match="lengths must hold integers, got dtype torch.float32"):
        layer(x, lengths=torch.tensor([3.0, 2.0, 1.0, 1.0]))
    h_bad = torch.zeros(1, B, H)  # one layer's worth for a two-layer network
    hx = (h_bad, h_bad) if kind in ("lstm", "peephole") else h_bad
    name = "hx\\[0\\]" if kind in ("lstm", "peephole") else "hx"
    with pytest.raises(ValueError, match=rf"{name} must have shape \(2, 4, 6\), got \(1, 4, 6\)"):
        layer(x, hx)


def test_lstm_hx_must_be_a_pair_and_packed_excludes_lengths():
    layer = LSTM(I, H)
    x = torch.randn(T, B, I)
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        layer(x, torch.zeros(1, B, H))
    packed = pack_padded_sequence(x, [7, 6, 5, 4])
    with pytest.raises(ValueError, match="not both"):
        layer(packed, lengths=[7, 6, 5, 4])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        LSTM(I, H, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\], got 1.5"):
        GRU(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="batch_first must be a bool.*got str 'False'"):
        GRU(3, 5, batch_first="False")  # torch.nn raises TypeError too; a string reads as True
    with pytest.raises(TypeError, match="bias must be a bool"):
        LSTM(I, H, bias=1)
    with pytest.raises(TypeError, match="bidirectional must be a bool"):
        RNN(I, H, bidirectional="yes")
    with pytest.raises(TypeError, match="hidden_size must be an int"):
        GRU(I, 6.0)
    with pytest.raises(ValueError, match="proj_size must be smaller than hidden_size=6, got 6"):
        LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match="proj_size must be a non-negative int"):
        PeepholeLSTM(I, H, proj_size=-1)
    with pytest.raises(TypeError, match="full must be a bool"):
        PeepholeLSTM(I, H, full="True")
    with pytest.warns(UserWarning, match="num_layers=1"):
        LSTM(I, H, dropout=0.5)


@pytest.mark.parametrize("forget_bias", [None, 3.0])
def test_same_seed_gives_the_same_start_as_torch_and_lstm(forget_bias):
    """Same seed: torch.nn.LSTM, our LSTM and PeepholeLSTM start with the same weights, and the
    random stream after them is where torch.nn leaves it (so the next module built matches too)."""
    starts = []
    for make in (
        lambda: nn.LSTM(I, H, num_layers=2, bidirectional=True),
        lambda: LSTM(I, H, num_layers=2, bidirectional=True, forget_bias=forget_bias),
        lambda: PeepholeLSTM(I, H, num_layers=2, bidirectional=True, forget_bias=forget_bias),
    ):
        torch.manual_seed(10)
        layer = make()
        starts.append(
            ({k: v for k, v in layer.state_dict().items() if "weight_c" not in k}, torch.rand(3))
        )
    (reference, after_reference), *ours = starts
    for state, after in ours:
        assert torch.equal(after, after_reference)
        for name, value in state.items():
            if forget_bias is None or "bias" not in name:
                assert torch.equal(value, reference[name]), name


# --- the peephole layer's own recurrence, and projections -------------------------------------


def _nonzero_peepholes(layer):
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if name.startswith("weight_c"):
                parameter.normal_(0, 0.7)


def _step(w, x_t, h, c):
    """One peephole step written out: c_{t-1} feeds i and f, c_t feeds o, then h = W_hr h."""
    gates = x_t @ w.weight_ih.T + h @ w.weight_hh.T + w.bias_ih + w.bias_hh
    i, f, g, o = gates.chunk(4)
    w_ci, w_cf, w_co = w.peepholes
    i = torch.sigmoid(i + w_ci * c)
    f = torch.sigmoid(f + w_cf * c)
    c = f * c + i * torch.tanh(g)
    o = torch.sigmoid(o + w_co * c)
    h = o * torch.tanh(c)
    return (h if w.weight_hr is None else w.weight_hr @ h), c


def _by_hand(layer, x, lengths):
    """Each sequence alone, without its padding, layer by layer and direction by direction:
    the layer's loop, written the slow way. Returns outputs, and h_n, c_n of each sequence."""
    P = layer.proj_size or layer.hidden_size
    outputs, finals = [], []
    for b, length in enumerate(lengths):
        seq = x[:length, b]  # (length, I)
        states = []
        for layer_index in range(layer.num_layers):
            directions = []
            for reverse in (False, True)[: layer.num_directions]:
                w = layer.weights(layer_index, reverse)
                h, c = x.new_zeros(P), x.new_zeros(layer.hidden_size)
                hs = []
                for t in reversed(range(length)) if reverse else range(length):
                    h, c = _step(w, seq[t], h, c)
                    hs.append(h)
                directions.append(torch.stack(hs[::-1] if reverse else hs))
                states.append((h, c))
            seq = torch.cat(directions, dim=-1)
        outputs.append(seq)
        finals.append(states)
    return outputs, finals


@pytest.mark.parametrize("proj_size", [0, 3])
def test_peephole_layer_recurrence_by_hand(proj_size):
    torch.manual_seed(13)
    layer = PeepholeLSTM(I, H, num_layers=2, bidirectional=True, proj_size=proj_size).double()
    _nonzero_peepholes(layer)
    lengths = [7, 3, 5, 1]
    x = torch.randn(T, B, I, dtype=torch.float64)
    output, (h_n, c_n) = layer(x, lengths=lengths)
    outputs, finals = _by_hand(layer, x, lengths)
    for b, length in enumerate(lengths):
        torch.testing.assert_close(output[:length, b], outputs[b])
        assert not output[length:, b].any()  # zeros past the end
        for k, (h, c) in enumerate(finals[b]):  # torch.nn's order: layer, then direction
            torch.testing.assert_close(h_n[k, b], h)
            torch.testing.assert_close(c_n[k, b], c)
    assert h_n.shape[-1] == (proj_size or H) and c_n.shape[-1] == H


@pytest.mark.parametrize("kind", ["lstm", "peephole"])
def test_projection_matches_torch(kind):
    """torch.nn.LSTM's proj_size: weight_hr_l*, h and outputs of size P, c of size H."""
    torch.manual_seed(14)
    ours, reference = make_pair(kind, dtype=torch.float64, num_layers=2, proj_size=2,
                                bidirectional=True, batch_first=True)  # fmt: skip
    assert ours.state_dict().keys() >= reference.state_dict().keys()
    assert ours.weight_hr_l1_reverse.shape == (2, H) and ours.weight_hh_l0.shape == (4 * H, 2)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    hx = (torch.randn(4, B, 2, dtype=torch.float64), torch.randn(4, B, H, dtype=torch.float64))
    assert_same_results(ours, reference, (x, hx), (x,))
    with pytest.raises(ValueError, match=r"hx\[0\] must have shape \(4, 4, 2\)"):
        ours(x, (hx[1], hx[1]))
    with pytest.raises(ValueError, match="proj_size=0"):
        ours.cell()


# --- the rest of torch.nn's contract ----------------------------------------------------------


def _positional(cls):
    return [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]


@pytest.mark.parametrize("kind", list(KINDS))
def test_constructor_has_torchs_positional_order(kind):
    ours, reference = KINDS[kind]
    # torch.nn's own __init__ takes *args (its signatures are typing overloads), so the order
    # is written out here from torch.nn's documentation.
    expected = {
        "rnn": ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first",
                "dropout", "bidirectional", "device", "dtype"],
        "gru": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                "bidirectional", "device", "dtype"],
    }.get(kind, ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                 "bidirectional", "proj_size", "device", "dtype"])  # fmt: skip
    assert _positional(ours) == expected
    # The same positional arguments mean the same thing to both.
    values = {"input_size": I, "hidden_size": H, "num_layers": 2, "nonlinearity": "relu",
              "bias": False, "batch_first": True, "dropout": 0.25, "bidirectional": True,
              "proj_size": 2, "device": "cpu", "dtype": torch.float64}  # fmt: skip
    # device and dtype by keyword: torch.nn.GRU and RNN hand a ninth positional argument to
    # their base class's proj_size, whatever their documented signature says.
    args = [values[name] for name in expected[:-2]]
    factory = {"device": "cpu", "dtype": torch.float64}
    ours_layer, reference_layer = ours(*args, **factory), reference(*args, **factory)
    for name in expected[:-2]:
        assert getattr(ours_layer, name) == getattr(reference_layer, name), name


def test_torchs_eighth_argument_is_proj_size_and_extensions_are_keyword_only():
    layer = LSTM(I, H, 1, True, False, 0.0, False, 2)  # torch.nn's positional proj_size
    assert layer.proj_size == 2 and layer.forget_bias is None
    with pytest.raises(TypeError):
        LSTM(I, H, 1, True, False, 0.0, False, 0, None, None, 3.0)  # forget_bias by position


@pytest.mark.parametrize("kind", list(KINDS))
def test_attributes_code_written_for_torch_uses(kind):
    ours, reference = make_pair(kind, num_layers=2, bidirectional=True)
    assert ours.mode == reference.mode and ours.proj_size == reference.proj_size == 0
    ours.flatten_parameters()  # a documented no-op
    names = [[name for name, p in ours.named_parameters() if any(p is q for q in weights)]
             for weights in ours.all_weights]  # fmt: skip
    expected = [list(names_) for names_ in reference._all_weights]
    if kind == "peephole":  # ours adds the peepholes after torch.nn's weights
        expected = [e + [n.replace("weight_ih", f"weight_{g}") for g in ("ci", "cf", "co")
                         for n in e[:1]] for e in expected]  # fmt: skip
    assert names == expected


@pytest.mark.parametrize("kind", list(KINDS))
def test_factory_keywords(kind):
    layer = KINDS[kind][0](I, H, num_layers=2, dtype=torch.float64, device="cpu")
    assert {p.dtype for p in layer.parameters()} == {torch.float64}
    meta = KINDS[kind][0](I, H, device="meta")
    assert all(p.is_meta for p in meta.parameters())


@pytest.mark.parametrize("kind", list(KINDS))
def test_cell_draws_no_random_numbers(kind):
    layer = KINDS[kind][0](I, H, num_layers=2, bidirectional=True)
    before = torch.get_rng_state()
    cell = layer.cell(layer=1, reverse=True)
    assert torch.equal(torch.get_rng_state(), before)
    assert cell.weight_ih is layer.weight_ih_l1_reverse

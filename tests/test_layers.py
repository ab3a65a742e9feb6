"""course_lib.layers against torch.nn: same state dicts, outputs, final states and gradients."""

import contextlib
import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.layers import GRU, LSTM, RNN, PeepholeLSTM, reverse_time

KINDS = {
    "rnn": (RNN, nn.RNN),
    "lstm": (LSTM, nn.LSTM),
    "gru": (GRU, nn.GRU),
    "peephole": (PeepholeLSTM, nn.LSTM),
}
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]
I, H, T, B = 5, 6, 7, 4


def make_pair(kind, device="cpu", dtype=torch.float32, **kwargs):
    """A torch.nn layer and ours with the same weights (peepholes, which torch lacks, at zero)."""
    ours_class, torch_class = KINDS[kind]
    reference = torch_class(I, H, **kwargs).to(device, dtype)
    ours = ours_class(I, H, **kwargs).to(device, dtype)
    result = ours.load_state_dict(reference.state_dict(), strict=kind != "peephole")
    assert not result.unexpected_keys
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


def flat(hidden):
    return hidden if isinstance(hidden, tuple) else (hidden,)


def loss_of(output, hidden):
    # Weighted so that every output and state element gets its own gradient.
    total = (
        output * torch.linspace(-1, 1, output.shape[-1], device=output.device, dtype=output.dtype)
    ).sum()
    return total + sum(s.square().sum() for s in flat(hidden))


def assert_same_gradients(ours, reference, x, ours_out, ref_out, **tolerance):
    params_ours = dict(ours.named_parameters())
    names = [name for name, _ in reference.named_parameters()]
    grads_ref = torch.autograd.grad(loss_of(*ref_out), [x, *reference.parameters()])
    grads_ours = torch.autograd.grad(loss_of(*ours_out), [x, *(params_ours[n] for n in names)])
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
        ref_out, ours_out = reference(x, hx), ours(x, hx)
        torch.testing.assert_close(ours_out[0], ref_out[0])
        for e, g in zip(flat(ref_out[1]), flat(ours_out[1])):
            torch.testing.assert_close(g, e)
        assert_same_gradients(ours, reference, x, ours_out, ref_out)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
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


@pytest.mark.parametrize("full", [False, True])
def test_peephole_layer_gradcheck_float64(full):
    torch.manual_seed(6)
    layer = PeepholeLSTM(3, 2, bidirectional=True, full=full).double()
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("weight_c"):
                p.normal_()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *peepholes):
        params = {n: p for (n, _), p in zip(peephole_params, peepholes)}
        output, (h_n, c_n) = torch.func.functional_call(
            layer, params, (x,), {"lengths": [4, 2]}, strict=False
        )
        return output, h_n, c_n

    peephole_params = [(n, p) for n, p in layer.named_parameters() if n.startswith("weight_c")]
    inputs = (x, *(p.detach().clone().requires_grad_(True) for _, p in peephole_params))
    assert torch.autograd.gradcheck(run, inputs)


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

"""Plausible wrong answers to every exercise, written the way a learner might write them.

``WRONG[exercise_id]`` lists ``(function, hint)`` pairs: the exercise's check must reject the
function with an AssertionError whose message contains ``hint``, the part of the message that
names the mistake. The exercise ids are the ``exercise:ID`` tags of the solution notebooks.

These are written independently of the known-mistake variants inside ``course_lib.checks``
(different code, same bug), so the tests show that a check recognises the mistake and not just
its own copy of it. A few entries test the generic paths: an error raised by the learner's
code, a wrong dtype, a missing return, a detached result, an input changed in place, and a
mistake that matches no known variant.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from course_lib.layers import GRU, reverse_time
from course_lib.training import fit

WRONG: dict[str, list[tuple]] = defaultdict(list)
GENERIC = "matches none of the usual mistakes"


def wrong(exercise: str, hint: str):
    """Register the decorated function as a wrong answer to ``exercise``."""

    def register(function):
        WRONG[exercise].append((function, hint))
        return function

    return register


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


# --- 1.1 rnn_step ------------------------------------------------------------------------------


@wrong("rnn_step", "squashed with the sigmoid")
def rnn_step_sigmoid(x, h_prev, W_ih, W_hh, b):
    return _sigmoid(x @ W_ih.T + h_prev @ W_hh.T + b)


@wrong("rnn_step", "instead of its transpose")
def rnn_step_untransposed(x, h_prev, W_ih, W_hh, b):
    return np.tanh(x @ W_ih.T + h_prev @ W_hh + b)


@wrong("rnn_step", "ignores h_prev")
def rnn_step_feedforward(x, h_prev, W_ih, W_hh, b):
    return np.tanh(np.dot(x, W_ih.T) + b)


@wrong("rnn_step", "not squashed")
def rnn_step_linear(x, h_prev, W_ih, W_hh, b):
    return x @ W_ih.T + h_prev @ W_hh.T + b


@wrong("rnn_step", "bias b is missing")
def rnn_step_no_bias(x, h_prev, W_ih, W_hh, b):
    return np.tanh(x @ W_ih.T + h_prev @ W_hh.T)


@wrong("rnn_step", "raised ValueError")
def rnn_step_shape_error(x, h_prev, W_ih, W_hh, b):
    return np.tanh(x @ W_ih + h_prev @ W_hh.T + b)  # (B, I) @ (H, I): shapes do not fit


@wrong("rnn_step", "Did you forget `return`")
def rnn_step_no_return(x, h_prev, W_ih, W_hh, b):
    h = np.tanh(x @ W_ih.T + h_prev @ W_hh.T + b)  # noqa: F841


@wrong("rnn_step", "float32")
def rnn_step_float32(x, h_prev, W_ih, W_hh, b):
    return np.tanh(x @ W_ih.T + h_prev @ W_hh.T + b).astype(np.float32)


@wrong("rnn_step", GENERIC)
def rnn_step_scaled(x, h_prev, W_ih, W_hh, b):
    return np.tanh(0.5 * (x @ W_ih.T + h_prev @ W_hh.T + b))


# --- 1.2 rnn_forward ---------------------------------------------------------------------------


def _step(x, h, W_ih, W_hh, b):
    return np.tanh(x @ W_ih.T + h @ W_hh.T + b)


@wrong("rnn_forward", "only the last state")
def rnn_forward_last(xs, h0, W_ih, W_hh, b):
    h = h0
    for x in xs:
        h = _step(x, h, W_ih, W_hh, b)
    return h


@wrong("rnn_forward", "include h0")
def rnn_forward_with_h0(xs, h0, W_ih, W_hh, b):
    hs = [h0]
    for t in range(len(xs)):
        hs.append(_step(xs[t], hs[-1], W_ih, W_hh, b))
    return np.array(hs)


@wrong("rnn_forward", "starts again from h0")
def rnn_forward_no_carry(xs, h0, W_ih, W_hh, b):
    return np.stack([_step(x, h0, W_ih, W_hh, b) for x in xs])


@wrong("rnn_forward", "shifted by one step")
def rnn_forward_shifted(xs, h0, W_ih, W_hh, b):
    hs, h = [], h0
    for x in xs:
        hs.append(h)
        h = _step(x, h, W_ih, W_hh, b)
    return np.stack(hs)


@wrong("rnn_forward", "backwards")
def rnn_forward_reversed(xs, h0, W_ih, W_hh, b):
    hs, h = [], h0
    for t in range(len(xs) - 1, -1, -1):
        h = _step(xs[t], h, W_ih, W_hh, b)
        hs.append(h)
    return np.stack(hs)


# --- 1.3 rnn_backward --------------------------------------------------------------------------


def _bptt(xs, h0, hs, W_ih, W_hh, b, dhs, bug=None):
    """A learner's BPTT with one bug switched on."""
    T = xs.shape[0]
    grads = {"W_ih": np.zeros_like(W_ih), "W_hh": np.zeros_like(W_hh), "b": np.zeros_like(b)}
    carry = np.zeros_like(h0)
    order = range(T) if bug == "forward" else range(T - 1, -1, -1)
    for t in order:
        previous = h0 if t == 0 else hs[t - 1]
        total = dhs[t] if bug == "no_carry" else dhs[t] + carry
        if bug == "no_tanh":
            da = total
        elif bug == "tanh_prev":
            da = total * (1 - previous * previous)
        else:
            da = total * (1 - hs[t] * hs[t])
        grads["W_ih"] += da.T @ xs[t]
        grads["W_hh"] += da.T @ (hs[t] if bug == "dW_hh_h" else previous)
        grads["b"] = grads["b"] + (da if bug == "db_batch" else da.sum(0))
        carry = da @ (W_hh.T if bug == "transpose" else W_hh)
    grads["h0"] = carry
    return grads


for _bug, _hint in [
    ("no_carry", "no gradient flows back through time"),
    ("no_tanh", "tanh derivative is missing"),
    ("tanh_prev", "tanh derivative uses h_{t-1}"),
    ("transpose", "it is da @ W_hh"),
    ("dW_hh_h", "dW_hh pairs da_t with h_t"),
    ("forward", "loop runs forwards in time"),
    ("db_batch", "sum da over the batch"),
]:
    WRONG["rnn_backward"].append(
        (
            lambda xs, h0, hs, W_ih, W_hh, b, dhs, _bug=_bug: _bptt(
                xs, h0, hs, W_ih, W_hh, b, dhs, _bug
            ),
            _hint,
        )
    )


@wrong("rnn_backward", "lacks the keys ['h0']")
def rnn_backward_no_h0(xs, h0, hs, W_ih, W_hh, b, dhs):
    grads = _bptt(xs, h0, hs, W_ih, W_hh, b, dhs)
    del grads["h0"]
    return grads


# --- 2.1 lstm_step -----------------------------------------------------------------------------


def _lstm(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh, bug=None):
    H = h_prev.shape[1]
    z = x @ weight_ih.t() + h_prev @ weight_hh.t() + bias_ih + (0 if bug == "one_bias" else bias_hh)
    if bug == "ifog":
        i, f, o, g = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    elif bug == "fiog":
        f, i, o, g = z.split(H, dim=1)
    else:
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    i = torch.tanh(i) if bug == "i_tanh" else torch.sigmoid(i)
    f, o, g = torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
    c = c_prev + i * g if bug == "no_forget" else f * c_prev + i * g
    h = o * c if bug == "no_tanh_c" else o * torch.tanh(c)
    return (c, h) if bug == "swap" else (h, c)


for _bug, _hint in [
    ("i_tanh", "input gate uses tanh"),
    ("ifog", "order i|f|o|g"),
    ("fiog", "order f|i|o|g"),
    ("no_forget", "ignores the forget gate"),
    ("no_tanh_c", "forgot the tanh on the cell state"),
    ("swap", "you returned (c, h)"),
    ("one_bias", "only bias_ih is added"),
]:
    WRONG["lstm_step"].append((lambda *args, _bug=_bug: _lstm(*args, bug=_bug), _hint))


@wrong("lstm_step", "no gradient flows back")
def lstm_step_detached(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = _lstm(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh)
    return h.detach(), c.detach()


@wrong("lstm_step", "float32")
def lstm_step_float32(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = torch.zeros(x.shape[0], weight_ih.shape[0])  # float32 by default
    gates += x @ weight_ih.T + h_prev @ weight_hh.T + bias_ih + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev.float() + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@wrong("lstm_step", "should return a tuple (h, c)")
def lstm_step_only_h(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    return _lstm(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh)[0]


@wrong("lstm_step", GENERIC)
def lstm_step_leaky(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = _lstm(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh)
    return h + 0.01 * h_prev, c


# --- 2.2 set_forget_bias -----------------------------------------------------------------------


@wrong("forget_bias", "the input gate")
def set_forget_bias_first_block(cell, value):
    with torch.no_grad():
        cell.bias_ih[: cell.hidden_size] = value
        cell.bias_hh[: cell.hidden_size] = 0


@wrong("forget_bias", "slice of both biases")
def set_forget_bias_both(cell, value):
    H = cell.hidden_size
    with torch.no_grad():
        cell.bias_ih[H : 2 * H].fill_(value)
        cell.bias_hh[H : 2 * H].fill_(value)


@wrong("forget_bias", "still holds its random value")
def set_forget_bias_keeps_hh(cell, value):
    H = cell.hidden_size
    with torch.no_grad():
        cell.bias_ih[H : 2 * H] = value


@wrong("forget_bias", "torch.no_grad")
def set_forget_bias_without_no_grad(cell, value):
    H = cell.hidden_size
    cell.bias_ih[H : 2 * H] = value
    cell.bias_hh[H : 2 * H] = 0


@wrong("forget_bias", "did not change")
def set_forget_bias_new_cell(cell, value):
    fresh = torch.nn.LSTMCell(cell.input_size, cell.hidden_size).double()
    H = cell.hidden_size
    with torch.no_grad():
        fresh.load_state_dict(cell.state_dict())
        fresh.bias_ih[H : 2 * H] = value
        fresh.bias_hh[H : 2 * H] = 0
    return fresh


@wrong("forget_bias", "whole bias vector")
def set_forget_bias_everything(cell, value):
    with torch.no_grad():
        cell.bias_ih.fill_(value)
        cell.bias_hh.zero_()


# --- 2.3 forget_half_life ----------------------------------------------------------------------


@wrong("half_life", "bias itself as the forget gate")
def half_life_raw_bias(forget_bias):
    return math.log(0.5) / math.log(forget_bias)


@wrong("half_life", "mean lifetime")
def half_life_mean(forget_bias):
    f = 1 / (1 + math.exp(-forget_bias))
    return 1 / (1 - f)


@wrong("half_life", "don't round")
def half_life_rounded(forget_bias):
    f = 1 / (1 + math.exp(-forget_bias))
    return math.ceil(math.log(0.5) / math.log(f))


@wrong("half_life", "upside down")
def half_life_inverted(forget_bias):
    f = torch.sigmoid(torch.tensor(forget_bias)).item()
    return math.log(f) / math.log(0.5)


# --- 3.1 gru_step ------------------------------------------------------------------------------


def _gru(x, h_prev, weight_ih, weight_hh, bias_ih, bias_hh, bug=None):
    H = h_prev.shape[1]
    W_ir, W_iz, W_in = weight_ih.split(H)
    W_hr, W_hz, W_hn = weight_hh.split(H)
    b_ir, b_iz, b_in = bias_ih.split(H)
    b_hr, b_hz, b_hn = bias_hh.split(H)
    if bug == "zrn":
        W_ir, W_iz, W_hr, W_hz, b_ir, b_iz, b_hr, b_hz = (
            W_iz,
            W_ir,
            W_hz,
            W_hr,
            b_iz,
            b_ir,
            b_hz,
            b_hr,
        )
    r = torch.sigmoid(x @ W_ir.T + b_ir + h_prev @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h_prev @ W_hz.T + b_hz)
    if bug == "cho":
        n = torch.tanh(x @ W_in.T + b_in + (r * h_prev) @ W_hn.T + b_hn)
    elif bug == "bias_outside":
        n = torch.tanh(x @ W_in.T + b_in + r * (h_prev @ W_hn.T) + b_hn)
    elif bug == "no_reset":
        n = torch.tanh(x @ W_in.T + b_in + h_prev @ W_hn.T + b_hn)
    else:
        n = torch.tanh(x @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn))
    return z * n + (1 - z) * h_prev if bug == "swap_z" else (1 - z) * n + z * h_prev


for _bug, _hint in [
    ("cho", "before the matrix"),
    ("bias_outside", "b_hn sits inside the reset"),
    ("no_reset", "ignores the reset gate"),
    ("swap_z", "z and 1 - z are swapped"),
    ("zrn", "order z|r|n"),
]:
    WRONG["gru_step"].append((lambda *args, _bug=_bug: _gru(*args, bug=_bug), _hint))


# --- 3.2 count_parameters ----------------------------------------------------------------------


def _count(kind, input_size, hidden_size, num_layers=1, bidirectional=False, bug=None):
    gates = {"rnn": 1, "lstm": 4, "gru": 4 if bug == "gru4" else 3}[kind]
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        if layer == 0 or bug == "upper_input":
            inputs = input_size
        elif bug == "upper_h":
            inputs = hidden_size
        else:
            inputs = directions * hidden_size
        per_direction = gates * hidden_size * (inputs + hidden_size)
        per_direction += (1 if bug == "one_bias" else 2) * gates * hidden_size
        total += per_direction * (1 if bug == "one_direction" else directions)
    return total


for _bug, _hint in [
    ("one_bias", "one bias per gate"),
    ("upper_input", "hidden_size times the number of directions"),
    ("upper_h", "passes 2 * hidden_size features up"),
    ("gru4", "number of blocks is off"),
    ("one_direction", "two full sets of weights"),
]:
    WRONG["count_parameters"].append(
        (
            lambda kind, i, h, num_layers=1, bidirectional=False, _bug=_bug: _count(
                kind, i, h, num_layers, bidirectional, _bug
            ),
            _hint,
        )
    )


# --- 4.1 peephole_step -------------------------------------------------------------------------


def _peephole(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh, w_ci, w_cf, w_co, bug=None):
    i, f, g, o = (x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).chunk(4, dim=1)
    if bug == "swap_ci_cf":
        w_ci, w_cf = w_cf, w_ci
    if bug == "plain":
        w_ci = w_cf = w_co = torch.zeros_like(w_ci)
    i = torch.sigmoid(i + w_ci * c_prev)
    f = torch.sigmoid(f if bug == "no_f_peephole" else f + w_cf * c_prev)
    if bug == "o_old":
        o = torch.sigmoid(o + w_co * c_prev)
    c = f * c_prev + i * torch.tanh(g)
    if bug != "o_old":
        o = torch.sigmoid(o + w_co * c)
    return o * torch.tanh(c), c


for _bug, _hint in [
    ("o_old", "output gate peeks at c_{t-1}"),
    ("no_f_peephole", "forget gate has no peephole"),
    ("swap_ci_cf", "weight_ci and weight_cf are swapped"),
    ("plain", "no peephole terms at all"),
]:
    WRONG["peephole_step"].append((lambda *args, _bug=_bug: _peephole(*args, bug=_bug), _hint))


# --- 4.2 peephole_parameter_count --------------------------------------------------------------


@wrong("peephole_count", "three peepholes")
def peephole_count_four(input_size, hidden_size, full=False):
    H = hidden_size
    return 4 * H * (input_size + H) + 8 * H + 4 * (H * H if full else H)


@wrong("peephole_count", "3 * H**2")
def peephole_count_full_as_diagonal(input_size, hidden_size, full=False):
    H = hidden_size
    return 4 * H * (input_size + H + 2) + 3 * H


@wrong("peephole_count", "vector of H weights")
def peephole_count_always_matrix(input_size, hidden_size, full=False):
    H = hidden_size
    return 4 * H * (input_size + H + 2) + 3 * H * H


@wrong("peephole_count", "one bias per gate")
def peephole_count_one_bias(input_size, hidden_size, full=False):
    H = hidden_size
    return 4 * H * (input_size + H + 1) + 3 * (H * H if full else H)


@wrong("peephole_count", "whole cell")
def peephole_count_only_peepholes(input_size, hidden_size, full=False):
    return 3 * (hidden_size**2 if full else hidden_size)


# --- 5.1 reverse_within_lengths ----------------------------------------------------------------


@wrong("reverse_within_lengths", "whole padded length")
def reverse_everything(x, lengths):
    return torch.flip(x, dims=[0])


@wrong("reverse_within_lengths", "batch axis")
def reverse_batch(x, lengths):
    out = x.clone()
    for b in range(x.shape[1]):
        out[:, b] = x[:, x.shape[1] - 1 - b]
    return out


@wrong("reverse_within_lengths", "padding changed")
def reverse_and_zero_padding(x, lengths):
    out = torch.zeros_like(x)
    for b, n in enumerate(lengths):
        out[:n, b] = x[:n, b].flip(0)
    return out


@wrong("reverse_within_lengths", "modified its input `x` in place")
def reverse_in_place(x, lengths):
    for b, n in enumerate(lengths.tolist()):
        x[:n, b] = x[:n, b].flip(0).clone()
    return x


# --- 5.2 bidirectional -------------------------------------------------------------------------


def _bidirectional(x, lengths, forward_rnn, backward_rnn, bug=None):
    T = x.shape[0]
    flip = (lambda s: s.flip(0)) if bug == "flip_all" else (lambda s: reverse_time(s, lengths))
    forward_out = forward_rnn(x)[0]
    backward_out = (forward_rnn if bug == "same_rnn" else backward_rnn)(flip(x))[0]
    if bug != "no_flip_back":
        backward_out = flip(backward_out)
    if bug == "backward_first":
        out = torch.cat([backward_out, forward_out], dim=2)
    elif bug == "sum":
        out = forward_out + backward_out
    else:
        out = torch.cat([forward_out, backward_out], dim=2)
    if bug != "no_mask":
        mask = torch.arange(T)[:, None] < lengths[None, :]
        out = out.masked_fill(~mask[:, :, None], 0.0)
    return out


for _bug, _hint in [
    ("no_flip_back", "still in reversed order"),
    ("flip_all", "reversed over the padding"),
    ("backward_first", "forward first, then backward"),
    ("no_mask", "padded steps (past each length) are not zero"),
    ("same_rnn", "both directions used forward_rnn"),
    ("sum", "you added the two directions"),
]:
    WRONG["bidirectional"].append((lambda *args, _bug=_bug: _bidirectional(*args, bug=_bug), _hint))


# --- 5.3 final_states --------------------------------------------------------------------------


@wrong("final_states", "output[-1] is the last padded step")
def final_states_last_row(output, lengths):
    return output[-1]


@wrong("final_states", "it ends at step 0")
def final_states_both_at_end(output, lengths):
    return torch.stack([output[n - 1, b] for b, n in enumerate(lengths.tolist())])


@wrong("final_states", "halves are swapped")
def final_states_swapped(output, lengths):
    H = output.shape[2] // 2
    rows = torch.stack([output[n - 1, b] for b, n in enumerate(lengths.tolist())])
    return torch.cat([output[0, :, H:], rows[:, :H]], dim=1)


@wrong("final_states", "lengths[b] - 1, not step 0")
def final_states_first_row(output, lengths):
    return output[0].clone()


# --- 6.1 additive_scores -----------------------------------------------------------------------


def _additive(query, keys, W_q, W_k, b, v, bug=None):
    projected = torch.einsum("ah,bh->ba", W_q, query)[:, None, :]  # (B, 1, A)
    projected = projected + torch.einsum("ak,bsk->bsa", W_k, keys) + (0 if bug == "no_bias" else b)
    if bug == "outside":
        return torch.tanh(torch.einsum("bsa,a->bs", projected, v))
    energy = projected if bug == "no_tanh" else torch.tanh(projected)
    return energy.sum(dim=2) if bug == "sum" else torch.einsum("bsa,a->bs", energy, v)


for _bug, _hint in [
    ("no_tanh", "tanh is missing"),
    ("outside", "tanh goes inside"),
    ("sum", "project it with v"),
    ("no_bias", "bias b is missing"),
]:
    WRONG["additive_scores"].append((lambda *args, _bug=_bug: _additive(*args, bug=_bug), _hint))


# --- 6.2 masked_softmax ------------------------------------------------------------------------


@wrong("masked_softmax", "the mask is ignored")
def masked_softmax_no_mask(scores, mask):
    return scores.softmax(-1)


@wrong("masked_softmax", "over the batch axis")
def masked_softmax_dim0(scores, mask):
    return torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype)).softmax(0)


@wrong("masked_softmax", "no longer sum to 1")
def masked_softmax_mask_after(scores, mask):
    return torch.softmax(scores, dim=1) * mask.double()


@wrong("masked_softmax", "still gets weight e^0")
def masked_softmax_zero_fill(scores, mask):
    return torch.softmax(scores * mask, dim=-1)


@wrong("masked_softmax", "overflows")
def masked_softmax_naive(scores, mask):
    e = torch.exp(scores) * mask
    return e / e.sum(dim=-1, keepdim=True)


@wrong("masked_softmax", "modified its input `scores` in place")
def masked_softmax_in_place(scores, mask):
    scores[~mask] = float("-inf")
    return torch.softmax(scores, dim=-1)


# --- 6.3 scaled_dot_attention ------------------------------------------------------------------


def _dot(query, keys, values, mask, bug=None):
    d = query.shape[1]
    scores = torch.einsum("bd,bsd->bs", query, keys)
    scores = scores / {"unscaled": 1.0, "by_d": d}.get(bug, math.sqrt(d))
    if bug != "no_mask":
        scores = scores.masked_fill(~mask, -1e30)
    weights = torch.softmax(scores, dim=-1)
    source = keys if bug == "keys" else values
    context = torch.einsum("bs,bsh->bh", weights, source)
    return (weights, context) if bug == "swap" else (context, weights)


for _bug, _hint in [
    ("unscaled", "not scaled"),
    ("by_d", "not by d"),
    ("no_mask", "padded positions got weight"),
    ("keys", "averages the keys"),
    ("swap", "you returned (weights, context)"),
]:
    WRONG["scaled_dot_attention"].append((lambda *args, _bug=_bug: _dot(*args, bug=_bug), _hint))

# Chapter 07's wrong answers are written as a learner would write them, in their own file.
from test_ch07_wrong_implementations import WRONG_TBPTT, WRONG_TEMPERATURE  # noqa: E402

for _name, _function, _hint in WRONG_TBPTT:
    WRONG["tbptt"].append((_function, _hint))
for _name, _function, _hint in WRONG_TEMPERATURE:
    WRONG["temperature"].append((_function, _hint))


# --- 5.4 train_tagger: wrong StackedBiGRU classes (trained one step), then wrong training ---


def wrong_stack(hint: str):
    """Register a tagger trained (one step) around the decorated wrong StackedBiGRU class."""

    def register(stack_class):
        def train_tagger(train):
            torch.manual_seed(0)
            model = _Tagger(train, stack_class(16, 8, 0.2), 16)
            fit(model, train, steps=1, progress=False)
            return model

        WRONG["trained_tagger"].append((train_tagger, hint))
        return stack_class

    return register


class _TwoGRUs(torch.nn.Module):
    """Two bidirectional course_lib GRUs; subclasses wire them (wrongly) in forward."""

    def __init__(self, input_size, hidden_size, dropout, first_hidden=None, second_input=None):
        super().__init__()
        first_hidden = first_hidden or hidden_size
        self.rnn1 = GRU(input_size, first_hidden, batch_first=True, bidirectional=True)
        self.drop = torch.nn.Dropout(dropout)
        self.rnn2 = GRU(
            second_input or 2 * first_hidden, hidden_size, batch_first=True, bidirectional=True
        )


@wrong_stack("no dropout in training mode")
class StackNoDropout(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x, lengths=lengths)
        h2, _ = self.rnn2(h1, lengths=lengths)
        return h2


@wrong_stack("dropout sits after the second layer")
class StackDropoutLast(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x, lengths=lengths)
        h2, _ = self.rnn2(h1, lengths=lengths)
        return self.drop(h2)


@wrong_stack("dropout is applied to the input x")
class StackDropoutFirst(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(self.drop(x), lengths=lengths)
        return self.rnn2(h1, lengths=lengths)[0]


class StackUnchained(_TwoGRUs):
    def __init__(self, input_size, hidden_size, dropout):
        super().__init__(input_size, hidden_size, dropout, second_input=input_size)

    def forward(self, x, lengths=None):
        self.rnn1(x, lengths=lengths)
        return self.rnn2(x, lengths=lengths)[0]


wrong_stack("the layers are not chained")(StackUnchained)


class StackWrongHidden(_TwoGRUs):
    def __init__(self, input_size, hidden_size, dropout):
        super().__init__(input_size, hidden_size, dropout, first_hidden=input_size)

    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x, lengths=lengths)
        return self.rnn2(self.drop(h1), lengths=lengths)[0]


wrong_stack("your first layer has input_size hidden units")(StackWrongHidden)


@wrong_stack("not given lengths")
class StackNoLengths(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x)
        return self.rnn2(self.drop(h1))[0]


@wrong_stack("dropout is on in eval mode")
class StackFunctionalDropout(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x, lengths=lengths)
        h1 = torch.nn.functional.dropout(h1, p=self.drop.p)  # training=True by default
        return self.rnn2(h1, lengths=lengths)[0]


@wrong_stack("needs your StackedBiGRU inside it")
class StackOneModule(torch.nn.Module):
    def __init__(self, input_size, hidden_size, dropout):
        super().__init__()
        self.rnn = GRU(
            input_size,
            hidden_size,
            num_layers=2,
            dropout=dropout,
            batch_first=True,
            bidirectional=True,
        )

    def forward(self, x, lengths=None):
        return self.rnn(x, lengths=lengths)[0]


class _Tagger(torch.nn.Module):
    def __init__(self, data, stack, width):
        super().__init__()
        self.embedding = torch.nn.Embedding(len(data.vocab), 16)
        self.stack = stack
        self.head = torch.nn.Linear(width, len(data.classes))

    def forward(self, tokens, lengths=None):
        return self.head(self.stack(self.embedding(tokens), lengths))


class _GoodStack(_TwoGRUs):
    def forward(self, x, lengths=None):
        h1, _ = self.rnn1(x, lengths=lengths)
        return self.rnn2(self.drop(h1), lengths=lengths)[0]


def _train(data, stack, width, steps, lr=1e-2):
    torch.manual_seed(0)
    model = _Tagger(data, stack(), width)
    fit(model, data, steps=steps, lr=lr, progress=False)
    return model


@wrong("trained_tagger", "it must reach 95%")
def train_tagger_too_short(train):
    return _train(train, lambda: _GoodStack(16, 32, 0.1), 64, steps=5)


@wrong("trained_tagger", "with an nn.Dropout (p > 0) between them")
def train_tagger_no_dropout(train):
    return _train(train, lambda: _GoodStack(16, 32, 0.0), 64, steps=1)


@wrong("trained_tagger", "parameters; stay within")
def train_tagger_too_big(train):
    return _train(train, lambda: _GoodStack(16, 128, 0.1), 256, steps=1)


@wrong("trained_tagger", "return the trained model")
def train_tagger_returns_history(train):
    torch.manual_seed(0)
    model = _Tagger(train, _GoodStack(16, 32, 0.1), 64)
    return fit(model, train, steps=1, progress=False)


class _OneLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = GRU(16, 8, batch_first=True, bidirectional=True)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x, lengths=None):
        return self.drop(self.rnn(x, lengths=lengths)[0])


@wrong("trained_tagger", "needs your StackedBiGRU inside it")
def train_tagger_one_layer(train):
    torch.manual_seed(0)
    return _Tagger(train, _OneLayer(), 16)  # one bidirectional layer, not a stack


# --- lstm_layer (exercise 2.4, check_lstm_layer) ----------------------------------------------


def _lstm_cell_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    i, f, g, o = (x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@wrong("lstm_layer", "your states keep changing past each sequence's length")
def lstm_layer_runs_over_padding(xs, lengths, *weights):
    h = c = xs.new_zeros(xs.shape[1], weights[1].shape[1])
    outputs = []
    for x in xs:
        h, c = _lstm_cell_step(x, h, c, *weights)
        outputs.append(h)
    output = torch.stack(outputs)
    real = torch.arange(len(xs)).unsqueeze(1) < lengths  # (T, B)
    return output * real.unsqueeze(-1), h, c


@wrong("lstm_layer", "outputs at padded steps are not zero")
def lstm_layer_padding_not_zeroed(xs, lengths, *weights):
    h = c = xs.new_zeros(xs.shape[1], weights[1].shape[1])
    outputs = []
    for t, x in enumerate(xs):
        h_new, c_new = _lstm_cell_step(x, h, c, *weights)
        keep = (lengths <= t).unsqueeze(1)
        h, c = torch.where(keep, h, h_new), torch.where(keep, c, c_new)
        outputs.append(h)  # the frozen state is repeated over the padding
    return torch.stack(outputs), h, c


@wrong("lstm_layer", "nothing is masked")
def lstm_layer_no_masks(xs, lengths, *weights):
    h = c = xs.new_zeros(xs.shape[1], weights[1].shape[1])
    outputs = []
    for x in xs:
        h, c = _lstm_cell_step(x, h, c, *weights)
        outputs.append(h)
    return torch.stack(outputs), h, c


@wrong("lstm_layer", "h_n is output[-1]")
def lstm_layer_last_row(xs, lengths, *weights):
    h = c = xs.new_zeros(xs.shape[1], weights[1].shape[1])
    outputs = []
    for t, x in enumerate(xs):
        h_new, c_new = _lstm_cell_step(x, h, c, *weights)
        go = (t < lengths)[:, None]
        h, c = torch.where(go, h_new, h), torch.where(go, c_new, c)
        outputs.append(torch.where(go, h, 0.0))
    output = torch.stack(outputs)
    return output, output[-1], c


@wrong("lstm_layer", "the order is (output, h_n, c_n)")
def lstm_layer_swapped(xs, lengths, *weights):
    output, h, c = lstm_layer_last_row(xs, lengths, *weights)
    h = torch.stack([output[n - 1, b] for b, n in enumerate(lengths.tolist())])
    return output, c, h


@wrong("lstm_layer", "create the zero states with dtype=xs.dtype")
def lstm_layer_float32_state(xs, lengths, *weights):
    h = c = torch.zeros(xs.shape[1], weights[1].shape[1])  # float32 by default
    outputs = []
    for t, x in enumerate(xs):
        h_new, c_new = _lstm_cell_step(x, h, c, *weights)
        go = (t < lengths)[:, None]
        h, c = torch.where(go, h_new, h), torch.where(go, c_new, c)
        outputs.append(torch.where(go, h, 0.0))
    return torch.stack(outputs).float(), h.float(), c.float()

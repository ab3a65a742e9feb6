r"""Recurrent layers: a cell run over a whole sequence, in layers and in both directions.

``RNN``, ``LSTM``, ``GRU`` and ``PeepholeLSTM`` take the same arguments and give the same outputs
as ``torch.nn.RNN`` / ``LSTM`` / ``GRU``, with the same state-dict keys (``weight_ih_l0``,
``weight_hh_l1_reverse``, ...), so weights load both ways. The gate math is the one written in
:mod:`course_lib.cells`; this module only decides what runs when.

Three things make a readable loop fast without hiding it:

1. The input projection :math:`W_{ih} x_t + b` does not depend on the previous state, so it is
   computed for all T steps in one matmul before the loop; inside the loop only
   :math:`W_{hh} h_{t-1}` is left, one matmul for all gates at once.
2. The sequence is split with ``unbind`` (views, one backward node) rather than ``x[t]``
   (a new indexing node per step, which makes the backward pass slower as T grows).
3. Masks are applied only when sequences have different lengths.

Variable-length batches (``lengths=`` or a ``PackedSequence``): sequence b has ``lengths[b]``
real steps followed by padding. Its state stops changing after its last real step, so ``h_n``
is the state at that step; its outputs at padded steps are zero; and the reverse direction
starts at its own last real step, not at the padding (Schuster & Paliwal 1997 for
bidirectional networks).

Shapes: T time, B batch, I input, H hidden, D directions, L layers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from course_lib._validate import (
    check_float_like,
    check_lengths,
    check_positive_int,
    check_shape,
    check_tensor,
)
from course_lib.cells import (
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    RNNCell,
    gru_pointwise,
    init_forget_bias,
    lstm_pointwise,
    peephole_pointwise,
    rnn_pointwise,
)


class Weights(NamedTuple):
    """The parameters of one layer in one direction."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    peepholes: tuple[Tensor, ...] = ()  # (weight_ci, weight_cf, weight_co) for PeepholeLSTM


def reverse_time(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` (T, B, F) within its own length; padding stays in place.

    With lengths (3, 1) the steps [a b c] and [d - -] become [c b a] and [d - -]. Applying it twice
    gives ``x`` back, so the same function turns the reverse direction's outputs around again.
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    index = index.to(x.device).unsqueeze(-1).expand_as(x)  # (T, B, F)
    return x.gather(0, index)


class _RecurrentLayer(nn.Module):
    """Parameters, checks and the layer/direction bookkeeping shared by the four layers."""

    cell_class: type[nn.Module]
    num_gates: int  # H-sized blocks stacked in weight_ih
    has_cell_state: bool  # the LSTMs carry (h, c), the others h alone

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            check_positive_int(name, value)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1

        rows = self.num_gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(
                    f"weight_ih{suffix}", nn.Parameter(torch.empty(rows, layer_input))
                )
                self.register_parameter(
                    f"weight_hh{suffix}", nn.Parameter(torch.empty(rows, hidden_size))
                )
                for name in (f"bias_ih{suffix}", f"bias_hh{suffix}"):
                    self.register_parameter(name, nn.Parameter(torch.empty(rows)) if bias else None)

    def _suffixes(self, layer: int) -> list[str]:
        """Parameter-name suffixes of one layer: ``_l0`` and, if bidirectional, ``_l0_reverse``."""
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        # torch.nn's initialisation: its four weights uniform in ±1/sqrt(H), in its order, so the
        # same seed gives the same weights (and leaves the random stream where torch.nn leaves it).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            for reverse in range(self.num_directions):
                for weight in self.weights(layer, bool(reverse))[:4]:
                    if weight is not None:
                        nn.init.uniform_(weight, -bound, bound)

    def weights(self, layer: int, reverse: bool = False) -> Weights:
        """The parameters of one layer and direction."""
        suffix = self._suffixes(layer)[int(reverse)]
        return Weights(
            getattr(self, f"weight_ih{suffix}"),
            getattr(self, f"weight_hh{suffix}"),
            getattr(self, f"bias_ih{suffix}"),
            getattr(self, f"bias_hh{suffix}"),
        )

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        for name, default in (
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # -- the time loop of one direction, written out in each subclass ---------------------------

    def _recur(
        self, x: Tensor, state: tuple[Tensor, ...], w: Weights, mask: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run one direction over x (T, B, I); return outputs (T, B, H) and the final state."""
        raise NotImplementedError

    # -- forward ---------------------------------------------------------------------------------

    def forward(self, x, hx=None, lengths=None):
        """Run the layers over ``x``; see the module docstring for shapes and lengths."""
        # 1. Accept a PackedSequence by padding it; remember how to pack the output again.
        packed_input = x if isinstance(x, PackedSequence) else None
        if packed_input is not None:
            if lengths is not None:
                raise ValueError("pass lengths or a PackedSequence, not both")
            x, lengths = pad_packed_sequence(packed_input, batch_first=self.batch_first)

        # 2. Bring x to (T, B, I) and check it.
        x, batched = self._check_input(x)
        T, B, _ = x.shape
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
            if bool((lengths == T).all()):
                lengths = None  # nothing is padded: skip the masks
        mask = None
        if lengths is not None:
            mask = (torch.arange(T).unsqueeze(1) < lengths).to(x.device).unsqueeze(-1)  # (T, B, 1)
        states = self._initial_states(hx, x, batched)

        # 3. Layer by layer, direction by direction.
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                w = self.weights(layer, reverse=bool(direction))
                state = states[layer * self.num_directions + direction]
                if direction == 0:
                    out, final = self._recur(layer_input, state, w, mask)
                else:  # read each sequence from its own end, then turn the outputs around
                    out, final = self._recur(reverse_time(layer_input, lengths), state, w, mask)
                    out = reverse_time(out, lengths)
                outputs.append(out)
                finals.append(final)
            layer_input = (
                torch.cat(outputs, dim=-1) if self.bidirectional else outputs[0]
            )  # (T, B, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        # 4. Outputs and final states in torch.nn's layout.
        output = layer_input
        h_n = torch.stack([final[0] for final in finals])  # (D*L, B, H)
        hidden = (h_n, torch.stack([final[1] for final in finals])) if self.has_cell_state else h_n
        if not batched:
            output = output.squeeze(1)
            hidden = (
                tuple(s.squeeze(1) for s in hidden) if self.has_cell_state else hidden.squeeze(1)
            )
        elif self.batch_first:
            output = output.transpose(0, 1)
        if packed_input is not None:
            output = _pack_like(output, lengths, packed_input, self.batch_first)
        return output, hidden

    def _check_input(self, x: object) -> tuple[Tensor, bool]:
        """Return x as (T, B, I) and whether it was batched."""
        check_tensor("x", x)
        check_float_like("x", x, self.weight_ih_l0)
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(
                f"x must have shape {layout} or (T, I) with I={self.input_size}, "
                f"got {tuple(x.shape)}"
            )
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[0] == 0:
            raise ValueError("x has no time steps (T=0); a sequence needs at least one")
        if x.shape[1] == 0:
            raise ValueError("x has an empty batch (B=0)")
        return x, batched

    def _initial_states(self, hx: object, x: Tensor, batched: bool) -> list[tuple[Tensor, ...]]:
        """One state tuple per (layer, direction): ``(h,)`` or ``(h, c)``, each (B, H)."""
        count, B, H = self.num_layers * self.num_directions, x.shape[1], self.hidden_size
        if hx is None:
            zeros = x.new_zeros(B, H)
            return [(zeros, zeros) if self.has_cell_state else (zeros,)] * count
        if self.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            names, tensors = ("hx[0]", "hx[1]"), tuple(hx)
        else:
            names, tensors = ("hx",), (hx,)
        checked = []
        for name, tensor in zip(names, tensors):
            check_tensor(name, tensor)
            check_float_like(name, tensor, self.weight_ih_l0)
            check_shape(name, tensor, (count, B, H) if batched else (count, H))
            checked.append(tensor if batched else tensor.unsqueeze(1))
        return list(zip(*(t.unbind(0) for t in checked)))

    # -- tools for plots and widgets ---------------------------------------------------------------

    def cell(self, layer: int = 0, reverse: bool = False) -> nn.Module:
        """A cell module that shares (not copies) the parameters of one layer and direction."""
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in 0..{self.num_layers - 1}, got {layer}")
        if reverse and not self.bidirectional:
            raise ValueError("reverse=True needs a bidirectional layer")
        w = self.weights(layer, reverse)
        cell = self._make_cell(w.weight_ih.shape[1])
        for name, tensor in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
            setattr(cell, name, tensor)
        for name, tensor in zip(("weight_ci", "weight_cf", "weight_co"), w.peepholes):
            setattr(cell, name, tensor)
        return cell

    def _make_cell(self, input_size: int) -> nn.Module:
        return self.cell_class(input_size, self.hidden_size, self.bias).to(self.weight_ih_l0)

    def gate_trace(self, x: Tensor, layer: int = 0, reverse: bool = False) -> dict[str, Tensor]:
        """Every gate of one layer and direction over time, each (T, B, H) (or batch-first).

        Runs the layers below ``layer`` as usual, then steps the cell of ``layer`` one step at a
        time through :meth:`cell`'s ``step``. Equal-length sequences only (no ``lengths``).
        """
        x, batched = self._check_input(x)
        cell = self.cell(layer, reverse)  # checks layer and reverse
        for below in range(layer):
            outputs = []
            for direction in range(self.num_directions):
                w = self.weights(below, reverse=bool(direction))
                state = self._initial_states(None, x, True)[0]
                seq = x if direction == 0 else x.flip(0)
                out, _ = self._recur(seq, state, w, None)
                outputs.append(out if direction == 0 else out.flip(0))
            x = torch.cat(outputs, dim=-1)
        steps = x.flip(0) if reverse else x
        state, trace = None, {}
        for x_t in steps.unbind(0):
            state, gates = cell.step(x_t, state)
            for name, value in gates.items():
                trace.setdefault(name, []).append(value)
        result = {}
        for name, values in trace.items():
            stacked = torch.stack(values)  # (T, B, H)
            stacked = stacked.flip(0) if reverse else stacked
            if not batched:
                stacked = stacked.squeeze(1)
            elif self.batch_first:
                stacked = stacked.transpose(0, 1)
            result[name] = stacked
        return result


def _pack_like(
    output: Tensor, lengths: Tensor | None, packed_input: PackedSequence, batch_first: bool
) -> PackedSequence:
    """Pack ``output`` with exactly the layout (batch order, batch sizes) of ``packed_input``."""
    if lengths is None:  # every sequence had the full length T
        B = output.shape[0] if batch_first else output.shape[1]
        T = output.shape[1] if batch_first else output.shape[0]
        lengths = torch.full((B,), T, dtype=torch.int64)
    order = packed_input.sorted_indices
    if order is not None:  # pack in the input's sorted order, then carry its permutation along
        output = output.index_select(0 if batch_first else 1, order)
        lengths = lengths.index_select(0, order.cpu())
    packed = pack_padded_sequence(output, lengths, batch_first=batch_first, enforce_sorted=True)
    return PackedSequence(
        packed.data, packed.batch_sizes, packed_input.sorted_indices, packed_input.unsorted_indices
    )


class RNN(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.RNNCell` over time; ``torch.nn.RNN``'s interface."""

    cell_class = RNNCell
    num_gates = 1
    has_cell_state = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def _make_cell(self, input_size: int) -> nn.Module:
        cell = RNNCell(input_size, self.hidden_size, self.bias, self.nonlinearity)
        return cell.to(self.weight_ih_l0)

    def _recur(self, x, state, w, mask):
        (h,) = state
        # One matmul projects every step's input; the biases are folded in once.
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, H)
        weight_hh_t = w.weight_hh.T
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            h_new = rnn_pointwise(torch.addmm(x_t, h, weight_hh_t), self.nonlinearity)  # (B, H)
            h = h_new if mask is None else torch.where(mask[t], h_new, h)
            hs.append(h)
        output = torch.stack(hs)  # (T, B, H)
        return (output if mask is None else output * mask), (h,)


class LSTM(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.LSTMCell` over time; ``torch.nn.LSTM``'s interface.

    ``forget_bias`` is as in :class:`~course_lib.cells.LSTMCell` (None keeps torch.nn's init).
    Returns ``(output, (h_n, c_n))``.
    """

    cell_class = LSTMCell
    num_gates = 4
    has_cell_state = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        self.forget_bias = forget_bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None:
            for layer in range(self.num_layers):
                for reverse in range(self.num_directions):
                    w = self.weights(layer, bool(reverse))
                    init_forget_bias(w.bias_ih, w.bias_hh, self.forget_bias)

    def _recur(self, x, state, w, mask):
        h, c = state
        # One matmul projects every step's input for all four gates; both biases folded in once.
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, 4H)
        weight_hh_t = w.weight_hh.T
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            gates = torch.addmm(x_t, h, weight_hh_t)  # (B, 4H), all gates in one matmul
            h_new, c_new, _ = self._pointwise(gates, c, w)
            if mask is None:
                h, c = h_new, c_new
            else:  # finished sequences keep their last state
                h, c = torch.where(mask[t], h_new, h), torch.where(mask[t], c_new, c)
            hs.append(h)
        output = torch.stack(hs)  # (T, B, H)
        return (output if mask is None else output * mask), (h, c)

    def _pointwise(self, gates, c, w):
        return lstm_pointwise(gates, c)


class PeepholeLSTM(LSTM):
    """A stack of :class:`~course_lib.cells.PeepholeLSTMCell`; ``torch.nn.LSTM``'s interface.

    Adds ``weight_ci_l0``, ``weight_cf_l0``, ``weight_co_l0`` (and ``_reverse``, ``_l1`` ...),
    diagonal (H,) by default or (H, H) with ``full=True``, initialised to zero: a fresh
    PeepholeLSTM with LSTM weights loaded computes exactly what the LSTM computes.
    """

    cell_class = PeepholeLSTMCell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        forget_bias: float | None = None,
        full: bool = False,
    ) -> None:
        self.full = full  # read by reset_parameters, which the LSTM constructor calls
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            forget_bias,
        )

    def reset_parameters(self) -> None:
        # Register the peepholes first: the LSTM's reset (forget bias) reads every weight.
        shape = (self.hidden_size, self.hidden_size) if self.full else (self.hidden_size,)
        peepholes = [
            f"weight_{gate}{suffix}"
            for layer in range(self.num_layers)
            for suffix in self._suffixes(layer)
            for gate in ("ci", "cf", "co")
        ]
        for name in peepholes:
            if getattr(self, name, None) is None:
                weight = torch.empty(shape, device=self.weight_ih_l0.device)
                self.register_parameter(name, nn.Parameter(weight))
        super().reset_parameters()  # draws no random numbers for the peepholes
        for name in peepholes:
            nn.init.zeros_(getattr(self, name))  # start as a plain LSTM

    def weights(self, layer: int, reverse: bool = False) -> Weights:
        suffix = self._suffixes(layer)[int(reverse)]
        peepholes = tuple(getattr(self, f"weight_{gate}{suffix}") for gate in ("ci", "cf", "co"))
        return super().weights(layer, reverse)._replace(peepholes=peepholes)

    def _make_cell(self, input_size: int) -> nn.Module:
        cell = PeepholeLSTMCell(input_size, self.hidden_size, self.bias, full=self.full)
        return cell.to(self.weight_ih_l0)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", full=True" if self.full else "")

    def _pointwise(self, gates, c, w):
        return peephole_pointwise(gates, c, *w.peepholes)


class GRU(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.GRUCell` over time; ``torch.nn.GRU``'s interface."""

    cell_class = GRUCell
    num_gates = 3
    has_cell_state = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        self.reset_parameters()

    def _recur(self, x, state, w, mask):
        (h,) = state
        # The input part of all three gates in one matmul before the loop. The hidden part keeps
        # its own bias inside the loop: the reset gate multiplies W_hn h + b_hn (see GRUCell).
        x_proj = F.linear(x, w.weight_ih, w.bias_ih)  # (T, B, 3H)
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            h_gates = F.linear(h, w.weight_hh, w.bias_hh)  # (B, 3H)
            h_new, _ = gru_pointwise(x_t, h_gates, h)
            h = h_new if mask is None else torch.where(mask[t], h_new, h)
            hs.append(h)
        output = torch.stack(hs)  # (T, B, H)
        return (output if mask is None else output * mask), (h,)

r"""Recurrent layers: a cell run over a whole sequence, in layers and in both directions.

``RNN``, ``LSTM``, ``GRU`` and ``PeepholeLSTM`` keep torch.nn's contract: the same constructor
arguments in the same order and of the same types (``device=`` / ``dtype=`` included), the same
state-dict keys (``weight_ih_l0``, ``weight_hh_l1_reverse``, ``weight_hr_l0`` ...), the same
outputs, and torch.nn's attributes ``mode``, ``proj_size``, ``all_weights`` and
``flatten_parameters()``. The gate math is the one written in :mod:`course_lib.cells`; this
module only decides what runs when. The course's extensions (``forget_bias``, ``full``, and
``lengths=`` in ``forward``) are keyword-only.

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

Projections (``proj_size=P > 0``, LSTMs only; Sak, Senior & Beaufays 2014): after each step the
hidden state is projected, :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))` with ``weight_hr_l*`` of
shape (P, H). So ``h`` and the outputs have P features while the cell state ``c`` keeps H, and
``weight_hh`` is (4H, P), exactly as in ``torch.nn.LSTM``.

Shapes: T time, B batch, I input, H hidden, P projection (P = H without one), D directions,
L layers.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from course_lib._validate import (
    check_bool,
    check_choice,
    check_float_like,
    check_int,
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
    _Cell,
    check_forget_bias,
    gru_pointwise,
    init_forget_bias,
    lstm_pointwise,
    peephole_pointwise,
    rnn_pointwise,
)

Device = torch.device | str | None


class Weights(NamedTuple):
    """The parameters of one layer in one direction."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    weight_hr: Tensor | None = None  # (P, H) when proj_size > 0 (LSTMs only)
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


def _check_dropout(dropout: object, num_layers: int) -> float:
    # ValueError even for a non-number, as torch.nn raises for dropout.
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"dropout={dropout} acts between stacked layers, and num_layers=1 has none",
            stacklevel=4,  # the line that built the layer
        )
    return float(dropout)


class _RecurrentLayer(nn.Module):
    """Parameters, checks and the layer/direction bookkeeping shared by the four layers.

    Every parameter is registered in ``__init__`` (here, and the peepholes in PeepholeLSTM's);
    ``reset_parameters`` only fills them. Each subclass writes its own time loop, ``_recur``.
    """

    num_gates: int  # H-sized blocks stacked in weight_ih
    has_cell_state: bool  # the LSTMs carry (h, c), the others h alone

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        proj_size: int,
        device: Device,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        # torch.nn's checks, with its exception types: TypeError for a wrong type, ValueError
        # for a wrong value.
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_bool("bidirectional", bidirectional)
        check_int("proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size={hidden_size}, got {proj_size}"
            )
        self.mode = mode  # torch.nn's name of the recurrence: "RNN_TANH", "LSTM", "GRU", ...
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = _check_dropout(dropout, num_layers)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.num_directions = 2 if bidirectional else 1
        # The size of h and of each direction's output: P with a projection, else H.
        self.output_size = proj_size if proj_size > 0 else hidden_size

        # The parameters of each layer and direction, in torch.nn's order (the same seed then
        # gives the same weights). _weight_names keeps that order for all_weights.
        rows = self.num_gates * hidden_size
        self._weight_names: list[list[str]] = []
        for layer in range(num_layers):
            if layer == 0:
                layer_input = input_size
            else:
                layer_input = self.output_size * self.num_directions
            for suffix in self._suffixes(layer):
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                self._register(names[0], (rows, layer_input), device, dtype)
                self._register(names[1], (rows, self.output_size), device, dtype)
                for name in (f"bias_ih{suffix}", f"bias_hh{suffix}"):
                    if bias:
                        self._register(name, (rows,), device, dtype)
                        names.append(name)
                    else:
                        self.register_parameter(name, None)
                if proj_size > 0:
                    self._register(f"weight_hr{suffix}", (proj_size, hidden_size), device, dtype)
                    names.append(f"weight_hr{suffix}")
                self._weight_names.append(names)

    def _register(
        self, name: str, shape: tuple[int, ...], device: Device, dtype: torch.dtype | None
    ) -> None:
        self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))

    def _suffixes(self, layer: int) -> list[str]:
        """Parameter-name suffixes of one layer: ``_l0`` and, if bidirectional, ``_l0_reverse``."""
        if self.bidirectional:
            return [f"_l{layer}", f"_l{layer}_reverse"]
        return [f"_l{layer}"]

    def reset_parameters(self) -> None:
        # torch.nn's initialisation: its weights uniform in ±1/sqrt(H), in its order, so the
        # same seed gives the same weights (and leaves the random stream where torch.nn leaves it).
        bound = 1.0 / math.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            for reverse in (False, True)[: self.num_directions]:
                w = self.weights(layer, reverse)
                for weight in (w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, w.weight_hr):
                    if weight is not None:
                        nn.init.uniform_(weight, -bound, bound)

    def weights(self, layer: int, reverse: bool = False) -> Weights:
        """The parameters of one layer and direction."""
        suffix = self._suffixes(layer)[1 if reverse else 0]
        return Weights(
            getattr(self, f"weight_ih{suffix}"),
            getattr(self, f"weight_hh{suffix}"),
            getattr(self, f"bias_ih{suffix}"),
            getattr(self, f"bias_hh{suffix}"),
            getattr(self, f"weight_hr{suffix}", None),
        )

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """torch.nn's list of each layer and direction's parameters, in its order."""
        return [[getattr(self, name) for name in names] for names in self._weight_names]

    def flatten_parameters(self) -> None:
        """Does nothing: torch.nn packs its weights into one buffer for cuDNN here, and this
        layer never calls cuDNN. It exists so that code written for torch.nn runs unchanged."""

    def _reference(self) -> Tensor:
        """A parameter whose dtype and device every input must share."""
        return self.get_parameter("weight_ih_l0")

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bias": True,
            "batch_first": False,
            "dropout": 0.0,
            "bidirectional": False,
            "proj_size": 0,
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # -- the time loop of one direction, written out in each subclass ---------------------------

    def _recur(
        self, x: Tensor, state: tuple[Tensor, ...], w: Weights, mask: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run one direction over x (T, B, I); return outputs (T, B, P) and the final state."""
        raise NotImplementedError

    # -- forward ---------------------------------------------------------------------------------

    def forward(
        self, x: Tensor | PackedSequence, hx: object = None, *, lengths: object = None
    ) -> tuple[Any, Any]:
        """Run the layers over ``x``; see the class docstring for shapes and lengths."""
        # 1. Accept a PackedSequence by padding it; remember how to pack the output again.
        packed_input = x if isinstance(x, PackedSequence) else None
        if packed_input is not None:
            if lengths is not None:
                raise ValueError("pass lengths or a PackedSequence, not both")
            x, lengths = pad_packed_sequence(packed_input, batch_first=self.batch_first)

        # 2. Bring x to (T, B, I) and check it.
        x, batched = self._check_input(x)
        T, B, _ = x.shape
        checked_lengths = None
        if lengths is not None:
            checked_lengths = check_lengths(lengths, B, T)
            if bool((checked_lengths == T).all()):
                checked_lengths = None  # nothing is padded: skip the masks
        mask = None
        if checked_lengths is not None:
            steps = torch.arange(T).unsqueeze(1)  # (T, 1)
            mask = (steps < checked_lengths).to(x.device).unsqueeze(-1)  # (T, B, 1)
        states = self._initial_states(hx, x, batched)

        # 3. Layer by layer, direction by direction.
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                w = self.weights(layer, reverse=direction == 1)
                state = states[layer * self.num_directions + direction]
                if direction == 0:
                    out, final = self._recur(layer_input, state, w, mask)
                else:  # read each sequence from its own end, then turn the outputs around
                    backwards = reverse_time(layer_input, checked_lengths)
                    out, final = self._recur(backwards, state, w, mask)
                    out = reverse_time(out, checked_lengths)
                outputs.append(out)  # (T, B, P)
                finals.append(final)
            layer_input = torch.cat(outputs, dim=-1)  # (T, B, D*P)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        # 4. Outputs and final states in torch.nn's layout.
        output = layer_input
        h_n = torch.stack([final[0] for final in finals])  # (D*L, B, P)
        c_n = torch.stack([final[1] for final in finals]) if self.has_cell_state else None
        if not batched:
            output = output.squeeze(1)  # (T, D*P)
            h_n = h_n.squeeze(1)  # (D*L, P)
            c_n = None if c_n is None else c_n.squeeze(1)  # (D*L, H)
        elif self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*P)
        hidden = h_n if c_n is None else (h_n, c_n)
        if packed_input is not None:
            return _pack_like(output, checked_lengths, packed_input, self.batch_first), hidden
        return output, hidden

    def _check_input(self, x: object) -> tuple[Tensor, bool]:
        """Return x as (T, B, I) and whether it was batched."""
        x = check_tensor("x", x)
        check_float_like("x", x, self._reference())
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
        """One state tuple per (layer, direction): ``(h,)`` or ``(h, c)``, h (B, P), c (B, H)."""
        count, B = self.num_layers * self.num_directions, x.shape[1]
        sizes = [self.output_size]  # h
        if self.has_cell_state:
            sizes.append(self.hidden_size)  # c is never projected
        if hx is None:
            zeros = tuple(x.new_zeros(B, size) for size in sizes)
            return [zeros] * count
        if self.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            named = [("hx[0]", hx[0]), ("hx[1]", hx[1])]
        else:
            named = [("hx", hx)]
        per_layer: list[tuple[Tensor, ...]] = []  # for each tensor of hx: count tensors (B, size)
        for (name, value), size in zip(named, sizes):
            tensor = check_tensor(name, value)
            check_float_like(name, tensor, self._reference())
            check_shape(name, tensor, (count, B, size) if batched else (count, size))
            if not batched:
                tensor = tensor.unsqueeze(1)  # (count, 1, size)
            per_layer.append(tensor.unbind(0))
        states = []
        for index in range(count):
            states.append(tuple(tensors[index] for tensors in per_layer))
        return states

    # -- tools for plots and widgets ---------------------------------------------------------------

    def _make_cell(self, input_size: int) -> _Cell:
        """An empty cell of this layer's kind on the meta device (no memory, no random numbers)."""
        raise NotImplementedError

    def cell(self, layer: int = 0, reverse: bool = False) -> _Cell:
        """A cell module that shares (not copies) the parameters of one layer and direction.

        It draws no random numbers: the global random state is the same before and after.
        """
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in 0..{self.num_layers - 1}, got {layer}")
        if reverse and not self.bidirectional:
            raise ValueError("reverse=True needs a bidirectional layer")
        if self.proj_size > 0:
            raise ValueError("cell() needs proj_size=0: the cells have no projection")
        w = self.weights(layer, reverse)
        cell = self._make_cell(w.weight_ih.shape[1])
        # Replace every meta parameter of the empty cell by the layer's own.
        for name, tensor in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
            setattr(cell, name, tensor)
        for name, tensor in zip(("weight_ci", "weight_cf", "weight_co"), w.peepholes):
            setattr(cell, name, tensor)
        assert not any(p.is_meta for p in cell.parameters()), "a cell parameter was not shared"
        return cell

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
                w = self.weights(below, reverse=direction == 1)
                zeros = self._initial_states(None, x, True)[0]
                if direction == 0:
                    out, _ = self._recur(x, zeros, w, None)
                else:
                    out, _ = self._recur(x.flip(0), zeros, w, None)
                    out = out.flip(0)
                outputs.append(out)
            x = torch.cat(outputs, dim=-1)  # (T, B, D*H)
        steps = x.flip(0) if reverse else x
        state: Any = None
        trace: dict[str, list[Tensor]] = {}
        for x_t in steps.unbind(0):
            state, gates = cell.step(x_t, state)
            for name, value in gates.items():
                trace.setdefault(name, []).append(value)
        result = {}
        for name, values in trace.items():
            stacked = torch.stack(values)  # (T, B, H)
            if reverse:
                stacked = stacked.flip(0)
            if not batched:
                stacked = stacked.squeeze(1)  # (T, H)
            elif self.batch_first:
                stacked = stacked.transpose(0, 1)  # (B, T, H)
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
    """A stack of :class:`~course_lib.cells.RNNCell` over time; ``torch.nn.RNN``'s interface.

    Args:
        input_size: I, the number of features of ``x`` at each step.
        hidden_size: H, the number of features of the hidden state h.
        num_layers: L, recurrent layers stacked on each other, each reading the outputs of the
            one below. Default: 1.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.
        bias: if False, the layer has no ``bias_ih`` and ``bias_hh``. Default: True.
        batch_first: if True, ``x`` and ``output`` are (B, T, ·) instead of (T, B, ·); the
            states are not affected. Default: False.
        dropout: the probability of zeroing each output of every layer except the last, in
            training mode only. Default: 0.
        bidirectional: if True, each layer also reads the sequence backwards (D = 2) and the two
            directions' outputs are concatenated. Default: False.
        device, dtype: where and in which floating-point type the parameters are created.

    Inputs: ``x``, ``hx`` (optional), ``lengths`` (optional, keyword-only)
        * **x**: (T, B, I), (B, T, I) with ``batch_first=True``, (T, I) unbatched, or a
          ``PackedSequence``.
        * **hx**: the initial state, ``h_0`` (D*L, B, H), or (D*L, H) for unbatched input; zeros
          when omitted.
        * **lengths**: a course extension: the real length of each sequence, (B,) ints in 1..T;
          padded steps are then skipped as with a ``PackedSequence``.

    Outputs: ``output``, ``h_n``
        * **output**: (T, B, D*H) (batch-first: (B, T, D*H); unbatched: (T, D*H)), the last
          layer's h at every step; a ``PackedSequence`` if ``x`` was one. Zero at padded steps.
        * **h_n**: (D*L, B, H), each layer and direction's h after its last real step.
    """

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
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def _make_cell(self, input_size: int) -> _Cell:
        dtype = self._reference().dtype
        return RNNCell(
            input_size, self.hidden_size, self.bias, self.nonlinearity, device="meta", dtype=dtype
        )

    def _recur(self, x, state, w, mask):
        (h,) = state
        # One matmul projects every step's input; the biases are folded in once.
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, H)
        weight_hh_t = w.weight_hh.T
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            h_new = rnn_pointwise(torch.addmm(x_t, h, weight_hh_t), self.nonlinearity)  # (B, H)
            if mask is not None:  # finished sequences keep their last state
                h_new = torch.where(mask[t], h_new, h)
            h = h_new
            hs.append(h)
        output = torch.stack(hs)  # (T, B, H)
        if mask is not None:
            output = output * mask  # zeros past each sequence's end
        return output, (h,)


# The base class of the four layers, for type hints (course_lib.models.make_layer returns one).
RecurrentLayer = _RecurrentLayer


def _init_forget_biases(layer: _RecurrentLayer, value: float) -> None:
    """Set b_if + b_hf = ``value`` in every layer and direction of an LSTM layer."""
    for index in range(layer.num_layers):
        for reverse in (False, True)[: layer.num_directions]:
            w = layer.weights(index, reverse)
            assert w.bias_ih is not None and w.bias_hh is not None  # checked in __init__
            init_forget_bias(w.bias_ih, w.bias_hh, value)


class LSTM(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.LSTMCell` over time; ``torch.nn.LSTM``'s interface.

    Returns ``(output, (h_n, c_n))``. With ``proj_size`` the projected LSTM of Sak et al. (2014),
    as in torch.nn (see the module docstring).

    Args:
        input_size: I, the number of features of ``x`` at each step.
        hidden_size: H, the number of features of the hidden state h.
        num_layers: L, recurrent layers stacked on each other, each reading the outputs of the
            one below. Default: 1.
        bias: if False, the layer has no ``bias_ih`` and ``bias_hh``. Default: True.
        batch_first: if True, ``x`` and ``output`` are (B, T, ·) instead of (T, B, ·); the
            states are not affected. Default: False.
        dropout: the probability of zeroing each output of every layer except the last, in
            training mode only. Default: 0.
        bidirectional: if True, each layer also reads the sequence backwards (D = 2) and the two
            directions' outputs are concatenated. Default: False.
        proj_size: P > 0 projects h after each step, h = W_hr (o * tanh(c)) (Sak et al. 2014):
            h and the outputs have P features, c keeps H. Default: 0 (no projection).
        device, dtype: where and in which floating-point type the parameters are created.
        forget_bias: keyword-only, a course extension: the forget gate's bias b_if + b_hf in
            every layer and direction (see :class:`~course_lib.cells.LSTMCell`). Default: None,
            torch.nn's initialisation.

    Inputs: ``x``, ``hx`` (optional), ``lengths`` (optional, keyword-only)
        * **x**: (T, B, I), (B, T, I) with ``batch_first=True``, (T, I) unbatched, or a
          ``PackedSequence``.
        * **hx**: the initial state, a tuple ``(h_0, c_0)`` with h_0 (D*L, B, P) and c_0 (D*L, B, H)
          ((D*L, ·) for unbatched input); zeros when omitted.
        * **lengths**: a course extension: the real length of each sequence, (B,) ints in 1..T;
          padded steps are then skipped as with a ``PackedSequence``.

    Outputs: ``output``, ``(h_n, c_n)``
        * **output**: (T, B, D*P) (batch-first: (B, T, D*P); unbatched: (T, D*P)), the last
          layer's h at every step; a ``PackedSequence`` if ``x`` was one. Zero at padded steps.
        * **h_n**: (D*L, B, P), each layer and direction's h after its last real step.
        * **c_n**: (D*L, B, H), each layer and direction's cell state after its last real
          step (never projected).
    """

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
        proj_size: int = 0,
        device: Device = None,
        dtype: torch.dtype | None = None,
        *,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )
        self.forget_bias = check_forget_bias(forget_bias, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None:
            _init_forget_biases(self, self.forget_bias)

    def _make_cell(self, input_size: int) -> _Cell:
        dtype = self._reference().dtype
        return LSTMCell(input_size, self.hidden_size, self.bias, device="meta", dtype=dtype)

    def _recur(self, x, state, w, mask):
        h, c = state
        # One matmul projects every step's input for all four gates; both biases folded in once.
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, 4H)
        weight_hh_t = w.weight_hh.T
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            gates = torch.addmm(x_t, h, weight_hh_t)  # (B, 4H), all gates in one matmul
            h_new, c_new, _ = lstm_pointwise(gates, c)  # (B, H) each
            if w.weight_hr is not None:
                h_new = h_new @ w.weight_hr.T  # (B, P), the projection
            if mask is not None:  # finished sequences keep their last state
                h_new = torch.where(mask[t], h_new, h)
                c_new = torch.where(mask[t], c_new, c)
            h, c = h_new, c_new
            hs.append(h)
        output = torch.stack(hs)  # (T, B, P)
        if mask is not None:
            output = output * mask  # zeros past each sequence's end
        return output, (h, c)


class PeepholeLSTM(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.PeepholeLSTMCell`; ``torch.nn.LSTM``'s interface.

    Adds ``weight_ci_l0``, ``weight_cf_l0``, ``weight_co_l0`` (and ``_reverse``, ``_l1`` ...),
    diagonal (H,) by default or (H, H) with ``full=True``, initialised to zero: a fresh
    PeepholeLSTM with LSTM weights loaded computes exactly what the LSTM computes. The peepholes
    look at the cell state c, which a projection never changes, so ``proj_size`` works as in
    :class:`LSTM`. ``mode`` is ``"LSTM"``: the state is (h, c) as in an LSTM.

    Args:
        input_size: I, the number of features of ``x`` at each step.
        hidden_size: H, the number of features of the hidden state h.
        num_layers: L, recurrent layers stacked on each other, each reading the outputs of the
            one below. Default: 1.
        bias: if False, the layer has no ``bias_ih`` and ``bias_hh``. Default: True.
        batch_first: if True, ``x`` and ``output`` are (B, T, ·) instead of (T, B, ·); the
            states are not affected. Default: False.
        dropout: the probability of zeroing each output of every layer except the last, in
            training mode only. Default: 0.
        bidirectional: if True, each layer also reads the sequence backwards (D = 2) and the two
            directions' outputs are concatenated. Default: False.
        proj_size: P > 0 projects h after each step, h = W_hr (o * tanh(c)) (Sak et al. 2014):
            h and the outputs have P features, c keeps H. Default: 0 (no projection).
        device, dtype: where and in which floating-point type the parameters are created.
        forget_bias: keyword-only, a course extension: the forget gate's bias b_if + b_hf in
            every layer and direction (see :class:`~course_lib.cells.LSTMCell`). Default: None,
            torch.nn's initialisation.
        full: keyword-only, a course extension: (H, H) peephole matrices instead of (H,)
            diagonals. Default: False.

    Inputs: ``x``, ``hx`` (optional), ``lengths`` (optional, keyword-only)
        * **x**: (T, B, I), (B, T, I) with ``batch_first=True``, (T, I) unbatched, or a
          ``PackedSequence``.
        * **hx**: the initial state, a tuple ``(h_0, c_0)`` with h_0 (D*L, B, P) and c_0 (D*L, B, H)
          ((D*L, ·) for unbatched input); zeros when omitted.
        * **lengths**: a course extension: the real length of each sequence, (B,) ints in 1..T;
          padded steps are then skipped as with a ``PackedSequence``.

    Outputs: ``output``, ``(h_n, c_n)``
        * **output**: (T, B, D*P) (batch-first: (B, T, D*P); unbatched: (T, D*P)), the last
          layer's h at every step; a ``PackedSequence`` if ``x`` was one. Zero at padded steps.
        * **h_n**: (D*L, B, P), each layer and direction's h after its last real step.
        * **c_n**: (D*L, B, H), each layer and direction's cell state after its last real
          step (never projected).
    """

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
        proj_size: int = 0,
        device: Device = None,
        dtype: torch.dtype | None = None,
        *,
        forget_bias: float | None = None,
        full: bool = False,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )
        self.forget_bias = check_forget_bias(forget_bias, bias)
        self.full = check_bool("full", full)
        # Our extension: three peephole weights per layer and direction, after torch.nn's.
        shape = (hidden_size, hidden_size) if full else (hidden_size,)
        for index, suffix in enumerate(
            suffix for layer in range(num_layers) for suffix in self._suffixes(layer)
        ):
            for gate in ("ci", "cf", "co"):
                self._register(f"weight_{gate}{suffix}", shape, device, dtype)
                self._weight_names[index].append(f"weight_{gate}{suffix}")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()  # torch.nn's weights; no random numbers for the peepholes
        if self.forget_bias is not None:
            _init_forget_biases(self, self.forget_bias)
        for layer in range(self.num_layers):
            for reverse in (False, True)[: self.num_directions]:
                for peephole in self.weights(layer, reverse).peepholes:
                    nn.init.zeros_(peephole)  # start as a plain LSTM

    def weights(self, layer: int, reverse: bool = False) -> Weights:
        suffix = self._suffixes(layer)[1 if reverse else 0]
        peepholes = tuple(getattr(self, f"weight_{gate}{suffix}") for gate in ("ci", "cf", "co"))
        return super().weights(layer, reverse)._replace(peepholes=peepholes)

    def _make_cell(self, input_size: int) -> _Cell:
        dtype = self._reference().dtype
        return PeepholeLSTMCell(
            input_size, self.hidden_size, self.bias, device="meta", dtype=dtype, full=self.full
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + (", full=True" if self.full else "")

    def _recur(self, x, state, w, mask):
        h, c = state
        w_ci, w_cf, w_co = w.peepholes
        # As in the LSTM: the input projection of every step in one matmul before the loop.
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        x_proj = F.linear(x, w.weight_ih, bias)  # (T, B, 4H)
        weight_hh_t = w.weight_hh.T
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            gates = torch.addmm(x_t, h, weight_hh_t)  # (B, 4H), all gates in one matmul
            # The peepholes: c_{t-1} feeds i and f, the new c_t feeds o (PeepholeLSTMCell).
            h_new, c_new, _ = peephole_pointwise(gates, c, w_ci, w_cf, w_co)  # (B, H) each
            if w.weight_hr is not None:
                h_new = h_new @ w.weight_hr.T  # (B, P), the projection
            if mask is not None:  # finished sequences keep their last state
                h_new = torch.where(mask[t], h_new, h)
                c_new = torch.where(mask[t], c_new, c)
            h, c = h_new, c_new
            hs.append(h)
        output = torch.stack(hs)  # (T, B, P)
        if mask is not None:
            output = output * mask  # zeros past each sequence's end
        return output, (h, c)


class GRU(_RecurrentLayer):
    """A stack of :class:`~course_lib.cells.GRUCell` over time; ``torch.nn.GRU``'s interface.

    Args:
        input_size: I, the number of features of ``x`` at each step.
        hidden_size: H, the number of features of the hidden state h.
        num_layers: L, recurrent layers stacked on each other, each reading the outputs of the
            one below. Default: 1.
        bias: if False, the layer has no ``bias_ih`` and ``bias_hh``. Default: True.
        batch_first: if True, ``x`` and ``output`` are (B, T, ·) instead of (T, B, ·); the
            states are not affected. Default: False.
        dropout: the probability of zeroing each output of every layer except the last, in
            training mode only. Default: 0.
        bidirectional: if True, each layer also reads the sequence backwards (D = 2) and the two
            directions' outputs are concatenated. Default: False.
        device, dtype: where and in which floating-point type the parameters are created.

    Inputs: ``x``, ``hx`` (optional), ``lengths`` (optional, keyword-only)
        * **x**: (T, B, I), (B, T, I) with ``batch_first=True``, (T, I) unbatched, or a
          ``PackedSequence``.
        * **hx**: the initial state, ``h_0`` (D*L, B, H), or (D*L, H) for unbatched input; zeros
          when omitted.
        * **lengths**: a course extension: the real length of each sequence, (B,) ints in 1..T;
          padded steps are then skipped as with a ``PackedSequence``.

    Outputs: ``output``, ``h_n``
        * **output**: (T, B, D*H) (batch-first: (B, T, D*H); unbatched: (T, D*H)), the last
          layer's h at every step; a ``PackedSequence`` if ``x`` was one. Zero at padded steps.
        * **h_n**: (D*L, B, H), each layer and direction's h after its last real step.
    """

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
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )
        self.reset_parameters()

    def _make_cell(self, input_size: int) -> _Cell:
        dtype = self._reference().dtype
        return GRUCell(input_size, self.hidden_size, self.bias, device="meta", dtype=dtype)

    def _recur(self, x, state, w, mask):
        (h,) = state
        # The input part of all three gates in one matmul before the loop. The hidden part keeps
        # its own bias inside the loop: the reset gate multiplies W_hn h + b_hn (see GRUCell).
        x_proj = F.linear(x, w.weight_ih, w.bias_ih)  # (T, B, 3H)
        hs = []
        for t, x_t in enumerate(x_proj.unbind(0)):
            h_gates = F.linear(h, w.weight_hh, w.bias_hh)  # (B, 3H)
            h_new, _ = gru_pointwise(x_t, h_gates, h)  # (B, H)
            if mask is not None:  # finished sequences keep their last state
                h_new = torch.where(mask[t], h_new, h)
            h = h_new
            hs.append(h)
        output = torch.stack(hs)  # (T, B, H)
        if mask is not None:
            output = output * mask  # zeros past each sequence's end
        return output, (h,)

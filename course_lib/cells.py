r"""One time step of each recurrent network in the course, written from scratch.

A *cell* maps the input at one time step and the previous state to the new state. The four cells
here share PyTorch's parameter contract (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``,
gates stacked in the order i|f|g|o for the LSTM and r|z|n for the GRU), so
``cell.load_state_dict(torch.nn.LSTMCell(...).state_dict())`` works in both directions.

The gate math lives in the ``*_pointwise`` functions below. The cells call them on one step and
the layers in :mod:`course_lib.layers` call the same functions inside their time loop, so each
equation is written exactly once.

The constructors take torch.nn's arguments in torch.nn's order, ``device=`` and ``dtype=``
included; the course's extensions (``forget_bias``, ``full``) are keyword-only, so code written
for torch.nn can never pass one of them by position.

Papers: Elman (1990) for the tanh RNN; Hochreiter & Schmidhuber (1997) and Gers, Schmidhuber &
Cummins (2000, the forget gate) for the LSTM; Cho et al. (2014) for the GRU; Gers & Schmidhuber
(2000) and Gers, Schraudolph & Schmidhuber (2002) for peephole connections.

Shapes: B batch, I input features, H hidden units (see :mod:`course_lib`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from course_lib._validate import (
    check_bool,
    check_choice,
    check_float_like,
    check_number,
    check_positive_int,
    check_shape,
    check_tensor,
)

# ---------------------------------------------------------------------------------------------
# The gate math, shared by cells and layers. ``gates`` is the pre-activation of all gates at once:
# W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, shape (B, k*H) with k gates stacked side by side.
# ---------------------------------------------------------------------------------------------


def rnn_pointwise(pre: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """Eq. (1) of :class:`RNNCell`: the new hidden state from its pre-activation."""
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_pointwise(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """Eqs. (1)-(6) of :class:`LSTMCell`. Returns ``h, c`` and the gates ``(i, f, g, o)``."""
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)  # (1), (2), (4)
    g = torch.tanh(g)  # (3)
    c = f * c_prev + i * g  # (5)
    h = o * torch.tanh(c)  # (6)
    return h, c, (i, f, g, o)


def gru_pointwise(
    x_gates: Tensor, h_gates: Tensor, h_prev: Tensor
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Eqs. (1)-(4) of :class:`GRUCell`. ``x_gates = W_i x + b_i``, ``h_gates = W_h h + b_h``.

    The two projections stay apart because the reset gate multiplies only the hidden part of the
    candidate (PyTorch's placement, see the class docstring).
    """
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)  # (1)
    z = torch.sigmoid(x_z + h_z)  # (2)
    n = torch.tanh(x_n + r * h_n)  # (3)
    h = (1 - z) * n + z * h_prev  # (4)
    return h, (r, z, n)


def peek(weight: Tensor, c: Tensor) -> Tensor:
    """A peephole term: diagonal ``w ⊙ c`` (weight (H,)) or full ``W c`` (weight (H, H))."""
    return weight * c if weight.dim() == 1 else c @ weight.T


def peephole_pointwise(
    gates: Tensor, c_prev: Tensor, weight_ci: Tensor, weight_cf: Tensor, weight_co: Tensor
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """Eqs. (1)-(6) of :class:`PeepholeLSTMCell`. Returns ``h, c`` and gates ``(i, f, g, o)``."""
    i, f, g, o = gates.chunk(4, dim=-1)
    i = torch.sigmoid(i + peek(weight_ci, c_prev))  # (1) the input gate sees c_{t-1}
    f = torch.sigmoid(f + peek(weight_cf, c_prev))  # (2) the forget gate sees c_{t-1}
    g = torch.tanh(g)  # (3)
    c = f * c_prev + i * g  # (4)
    o = torch.sigmoid(o + peek(weight_co, c))  # (5) the output gate sees the new c_t
    h = o * torch.tanh(c)  # (6)
    return h, c, (i, f, g, o)


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def check_forget_bias(forget_bias: object, bias: bool) -> float | None:
    """``forget_bias`` must be None or a number, and a number needs ``bias=True``."""
    if forget_bias is None:
        return None
    value = check_number("forget_bias", forget_bias)
    if not bias:
        raise ValueError("forget_bias needs bias=True (it is a value of the biases)")
    return value


def init_forget_bias(bias_ih: Tensor, bias_hh: Tensor, value: float) -> None:
    """Set the forget-gate bias (the second H-block of i|f|g|o) so that b_if + b_hf = ``value``."""
    H = bias_ih.shape[0] // 4
    with torch.no_grad():
        bias_ih[H : 2 * H].fill_(value)
        bias_hh[H : 2 * H].zero_()


class _Cell(nn.Module):
    """What the four cells share: torch.nn's four parameters, their initialisation, input checks.

    Every parameter is registered here or in a subclass's ``__init__``; ``reset_parameters``
    only fills them.
    """

    num_gates: int  # how many H-sized blocks are stacked in weight_ih (1, 3 or 4)
    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_bool("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        rows = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, device=device, dtype=dtype))
            self.bias_hh = nn.Parameter(torch.empty(rows, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def reset_parameters(self) -> None:
        # torch.nn's initialisation: its four weights uniform in ±1/sqrt(H), in its order, so the
        # same seed gives the same weights as torch.nn's cell.
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            if weight is not None:
                nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _check_input(self, x: object) -> tuple[Tensor, bool]:
        """Return ``x`` as (B, I) and whether it came unbatched as (I,)."""
        x = check_tensor("x", x)
        check_float_like("x", x, self.weight_ih)
        if x.dim() not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"x must have shape (B, {self.input_size}) or ({self.input_size},), "
                f"got {tuple(x.shape)}"
            )
        batched = x.dim() == 2
        return (x if batched else x.unsqueeze(0)), batched

    def _check_state(self, name: str, state: object, x: Tensor, batched: bool) -> Tensor:
        """Return a (B, H) state: zeros when ``state`` is None, else the checked tensor."""
        B, H = x.shape[0], self.hidden_size
        if state is None:
            return x.new_zeros(B, H)
        state = check_tensor(name, state)
        check_float_like(name, state, self.weight_ih)
        check_shape(name, state, (B, H) if batched else (H,))
        return state if batched else state.unsqueeze(0)

    def _check_pair(self, hx: object, x: Tensor, batched: bool) -> tuple[Tensor, Tensor]:
        """The LSTMs' state ``(h, c)``: zeros when ``hx`` is None, else both checked."""
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            return zeros, zeros
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"hx must be a tuple (h, c) for an LSTM cell, got {type(hx).__name__}")
        return (
            self._check_state("hx[0]", hx[0], x, batched),
            self._check_state("hx[1]", hx[1], x, batched),
        )

    def step(self, x: Tensor, hx: Any = None) -> tuple[Any, dict[str, Tensor]]:
        """One step: the new state and the gates it used (written out in each cell)."""
        raise NotImplementedError

    def _project(self, x: Tensor, h: Tensor) -> Tensor:
        """All gate pre-activations at once: one matmul for the input, one for the state."""
        gates = x @ self.weight_ih.T + h @ self.weight_hh.T  # (B, k*H)
        if self.bias_ih is not None and self.bias_hh is not None:
            gates = gates + self.bias_ih + self.bias_hh
        return gates


def _squeeze(batched: bool, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Undo the batch dimension added for unbatched input."""
    return tensors if batched else tuple(t.squeeze(0) for t in tensors)


class RNNCell(_Cell):
    r"""The Elman RNN cell: one layer that must do every job at once.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}) \qquad (1)

    :math:`x_t` is the input at step t and :math:`h_{t-1}` the previous *hidden state* (a vector the
    network keeps, not the previous output token). ``nonlinearity="relu"`` replaces tanh, as in
    ``torch.nn.RNNCell``.
    """

    num_gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def extra_repr(self) -> str:
        relu = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + relu

    def step(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One step; returns ``h`` and ``{"h": h}``."""
        x, batched = self._check_input(x)
        h = self._check_state("hx", hx, x, batched)
        h = rnn_pointwise(self._project(x, h), self.nonlinearity)  # (B, H)
        (h,) = _squeeze(batched, h)
        return h, {"h": h}

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self.step(x, hx)[0]


class LSTMCell(_Cell):
    r"""The LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) && (1) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) && (2) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) && (3) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) && (4) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t && (5) \\
        h_t &= o_t \odot \tanh(c_t) && (6)

    :math:`c_t` is the cell state, the memory that runs along the sequence; :math:`h_t` the hidden
    state passed to the next step and the layer above. The forget gate :math:`f_t` says what of
    the old memory to keep, the input gate :math:`i_t` how much of the candidate :math:`g_t` to
    write, and the output gate :math:`o_t` what to reveal. :math:`\sigma` is the logistic sigmoid
    and :math:`\odot` the element-wise product.

    Like PyTorch (and unlike the papers) there are two biases, ``bias_ih`` and ``bias_hh``; only
    their sum matters. ``forget_bias=None`` keeps torch.nn's initialisation; a number ``b`` sets
    the forget slice of ``bias_ih`` to ``b`` and of ``bias_hh`` to 0, so the forget gate starts
    near :math:`\sigma(b)` and the cell remembers by default (Gers et al. 2000; Jozefowicz et al.
    2015 recommend 1; the course's long recall task needs about 3).
    """

    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.forget_bias = check_forget_bias(forget_bias, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias is not None and self.bias_ih is not None and self.bias_hh is not None:
            init_forget_bias(self.bias_ih, self.bias_hh, self.forget_bias)

    def step(
        self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[tuple[Tensor, Tensor], dict[str, Tensor]]:
        """One step; returns ``(h, c)`` and the gates ``{"i", "f", "g", "o", "c", "h"}``."""
        x, batched = self._check_input(x)
        h, c = self._check_pair(hx, x, batched)
        h, c, (i, f, g, o) = lstm_pointwise(self._project(x, h), c)  # (B, H) each
        h, c, i, f, g, o = _squeeze(batched, h, c, i, f, g, o)
        return (h, c), {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self.step(x, hx)[0]


class GRUCell(_Cell):
    r"""The gated recurrent unit (Cho et al. 2014), in PyTorch's form.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) && (1) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) && (2) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) && (3) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1} && (4)

    The update gate :math:`z_t` does the work of the LSTM's forget and input gates at once: what
    is kept (:math:`z_t`) and what is written (:math:`1 - z_t`) add up to one. The reset gate
    :math:`r_t` decides how much of the old state the candidate :math:`n_t` sees. There is no
    output gate and no separate cell state.

    Deviation from the paper: Cho et al. apply :math:`r_t` *before* the matrix,
    :math:`W_{hn}(r_t \odot h_{t-1})`; PyTorch (and cuDNN) apply it after, as in (3). We follow
    PyTorch so that weights load both ways.
    """

    num_gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.reset_parameters()

    def step(self, x: Tensor, hx: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One step; returns ``h`` and the gates ``{"r", "z", "n", "h"}``."""
        x, batched = self._check_input(x)
        h = self._check_state("hx", hx, x, batched)
        # Input and hidden projections stay apart: r multiplies only the hidden part in (3).
        x_gates = x @ self.weight_ih.T  # (B, 3H)
        h_gates = h @ self.weight_hh.T  # (B, 3H)
        if self.bias_ih is not None and self.bias_hh is not None:
            x_gates = x_gates + self.bias_ih
            h_gates = h_gates + self.bias_hh
        h, (r, z, n) = gru_pointwise(x_gates, h_gates, h)
        h, r, z, n = _squeeze(batched, h, r, z, n)
        return h, {"r": r, "z": z, "n": n, "h": h}

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self.step(x, hx)[0]


class PeepholeLSTMCell(_Cell):
    r"""The LSTM cell with peephole connections (Gers & Schmidhuber 2000; Gers et al. 2002).

    .. math::
        i_t &= \sigma(W_{ii} x_t + W_{hi} h_{t-1} + w_{ci} \odot c_{t-1} + b_i) && (1) \\
        f_t &= \sigma(W_{if} x_t + W_{hf} h_{t-1} + w_{cf} \odot c_{t-1} + b_f) && (2) \\
        g_t &= \tanh(W_{ig} x_t + W_{hg} h_{t-1} + b_g) && (3) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t && (4) \\
        o_t &= \sigma(W_{io} x_t + W_{ho} h_{t-1} + w_{co} \odot c_t + b_o) && (5) \\
        h_t &= o_t \odot \tanh(c_t) && (6)

    The gates of a plain LSTM see only :math:`x_t` and :math:`h_{t-1}`, and :math:`h` is the
    cell state squashed and filtered by the output gate: while that gate is closed, the gates
    are blind to the memory. Peepholes give each gate a direct view of its own cell, which lets
    the network count steps and time its outputs. The input and forget gates see the old state
    :math:`c_{t-1}`; the output gate sees the new state :math:`c_t`, as in Gers et al. (2002).

    ``weight_ci``, ``weight_cf``, ``weight_co`` are our extension of PyTorch's parameter names.
    They are diagonal, shape (H,), adding only 3H weights; ``full=True`` makes them (H, H)
    matrices (3H² weights), the "greatly increased" count that the diagonal form avoids. They
    start at zero, so a fresh peephole cell computes exactly what an LSTM cell with the same
    other weights computes. ``forget_bias`` is as in :class:`LSTMCell`.
    """

    num_gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        forget_bias: float | None = None,
        full: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.forget_bias = check_forget_bias(forget_bias, bias)
        self.full = check_bool("full", full)
        shape = (hidden_size, hidden_size) if full else (hidden_size,)
        self.weight_ci = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.weight_cf = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.weight_co = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()  # draws random numbers for torch.nn's four weights only
        if self.forget_bias is not None and self.bias_ih is not None and self.bias_hh is not None:
            init_forget_bias(self.bias_ih, self.bias_hh, self.forget_bias)
        for peephole in (self.weight_ci, self.weight_cf, self.weight_co):
            nn.init.zeros_(peephole)  # start as a plain LSTM

    def extra_repr(self) -> str:
        return super().extra_repr() + (", full=True" if self.full else "")

    def step(
        self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[tuple[Tensor, Tensor], dict[str, Tensor]]:
        """One step; returns ``(h, c)`` and the gates ``{"i", "f", "g", "o", "c", "h"}``."""
        x, batched = self._check_input(x)
        h, c = self._check_pair(hx, x, batched)
        h, c, (i, f, g, o) = peephole_pointwise(
            self._project(x, h), c, self.weight_ci, self.weight_cf, self.weight_co
        )  # (B, H) each
        h, c, i, f, g, o = _squeeze(batched, h, c, i, f, g, o)
        return (h, c), {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        return self.step(x, hx)[0]

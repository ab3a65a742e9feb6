"""The cells, drawn: tanh RNN, LSTM (with its four questions), peephole LSTM, and GRU.

Each cell has the same frame: the memory runs along the top from left (t − 1) to right (t); the
previous hidden state and the input arrive on a bus at the bottom, h_{t-1} from the left and x_t
from below, drawn as two parallel wires because every gate reads both; layers (boxes) sit between
bus and memory; h_t leaves to the right (the next step) and upwards (the head, or the layer
above). Equations: chapter 01 (RNN), 02 (LSTM, Hochreiter & Schmidhuber 1997 with the forget gate
of Gers et al. 2000), 03 (GRU in PyTorch's form, Cho et al. 2014) and 04 (peepholes, Gers et al.
2002). `lstm_cell(values=...)` writes one step's gate values on the LSTM, for the gate explorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from course_lib.diagrams.svg import PALETTE, Drawing

BELT_Y, GATE_Y, BUS_Y = 110, 270, 350  # the memory, the layers, the bus of [h_{t-1}, x_t]
GAP = 3  # half the distance between the bus's h and x wires
BOX_HALF_HEIGHT = 18
LEFT, RIGHT = 20, 770  # where the wires enter and leave the figure

# The LSTM's four questions, in the order of chapter 02: (gate, short name, the question).
QUESTIONS = (
    ("f", "forget", "what can go?"),
    ("g", "propose", "what could I write?"),
    ("i", "admit", "how much gets in?"),
    ("o", "show", "what do I reveal?"),
)


def _bus(
    d: Drawing, x_entry: float, branches: Mapping[str, tuple[float, ...]], entry_y: float
) -> None:
    """h_{t-1} from the left and x_t from below, with a branch up to each box.

    `branches` maps "h" and "x" to the x positions where that wire turns up into a box.
    """
    h_end, x_end = max(branches["h"]), max(branches["x"])
    d.wire([(LEFT, BUS_Y - GAP), (h_end - GAP, BUS_Y - GAP)], "h", arrow=False)
    d.wire(
        [(x_entry, entry_y), (x_entry, BUS_Y + GAP), (x_end + GAP, BUS_Y + GAP)], "x", arrow=False
    )
    for x in branches["h"]:
        d.wire([(x - GAP, BUS_Y - GAP), (x - GAP, GATE_Y + BOX_HALF_HEIGHT)], "h", arrow=False)
    for x in branches["x"]:
        d.wire([(x + GAP, BUS_Y + GAP), (x + GAP, GATE_Y + BOX_HALF_HEIGHT)], "x", arrow=False)
    d.text(LEFT + 4, BUS_Y - 12, "h_{t-1}", anchor="start", quantity="h")
    d.text(x_entry - 8, entry_y - 4, "x_t", anchor="end", quantity="x")


def _h_out(d: Drawing, x_from: float, y_from: float, up_at: float, label: str = "h_t") -> None:
    """h_t: down to the bus's height, right to the next step, and up to the head."""
    d.wire([(x_from, y_from), (x_from, BUS_Y), (RIGHT, BUS_Y)], "h")
    d.dot(up_at, BUS_Y, "h")
    d.wire([(up_at, BUS_Y), (up_at, BELT_Y + 9)], "h", arrow=False)
    d.wire([(up_at, BELT_Y - 9), (up_at, 18)], "h")  # the gap: h_t passes under the memory
    d.text(RIGHT - 6, BUS_Y - 10, label, anchor="end", quantity="h")
    d.text(up_at + 8, 34, label, anchor="start", quantity="h")


def _value(values: Mapping[str, float] | None, key: str) -> str:
    return "" if values is None or key not in values else f" = {float(values[key]):.2f}"


def _level(values: Mapping[str, float] | None, key: str) -> float | None:
    if values is None or key not in values:
        return None
    value = float(values[key])
    return abs(value) if key in ("g", "n") else value  # tanh candidates: how strong, not sign


def rnn_cell() -> str:
    """The tanh RNN's step: one tanh layer reads h_{t-1} and x_t and writes h_t."""
    d = Drawing(
        620,
        320,
        "The tanh RNN cell",
        "One tanh layer reads the previous hidden state h_{t-1} and the input x_t and computes "
        "the new hidden state h_t, which goes to the next step and to the head.",
    )
    d.rect(90, 50, 380, 180, stroke="muted")
    y = 140
    d.wire([(LEFT, y), (228, y)], "h")
    d.wire([(260, 262), (260, y + 20)], "x")
    d.layer(260, y, "tanh", "h", width=64, height=40)
    d.wire([(292, y), (600, y)], "h")
    d.dot(410, y, "h")
    d.wire([(410, y), (410, 16)], "h")
    d.text(LEFT + 4, y - 12, "h_{t-1}", anchor="start", quantity="h")
    d.text(270, 258, "x_t", anchor="start", quantity="x")
    d.text(596, y - 10, "h_t", anchor="end", quantity="h")
    d.text(418, 32, "h_t", anchor="start", quantity="h")
    d.note(350, y + 40, "to the next step", size=12)
    d.note(470, 28, "to the head", size=12, anchor="start")
    d.equation(310, 300, "h_t = tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})")
    return d.svg()


def draw_lstm(
    d: Drawing,
    values: Mapping[str, float] | None = None,
    questions: bool = True,
    peepholes: bool = False,
    entry_y: float = 455,
) -> None:
    """The LSTM cell on `d`, in the 800 × 520 frame; see `lstm_cell` and `peephole_cell`."""
    fx, gx, ix, ox, tanh_x = 200, 330, 450, 570, 650
    d.rect(90, 60, 610, 330, stroke="muted")
    _bus(d, 130, {"h": (fx, gx, ix, ox), "x": (fx, gx, ix, ox)}, entry_y)
    # h_t leaves upwards first, so that the belt, drawn later, passes over it.
    _h_out(d, tanh_x, 284, 720)

    # The belt: c_{t-1} -> ⊙ f -> + i⊙g -> c_t. No matrix on it, only ⊙ and +.
    d.wire([(LEFT, BELT_Y), (RIGHT, BELT_Y)], "c", width=5)
    d.op(fx, BELT_Y, "⊙")
    d.op(390, BELT_Y, "+")
    d.text(
        LEFT + 4, BELT_Y - 12, "c_{t-1}" + _value(values, "c_prev"), anchor="start", quantity="c"
    )
    d.text(710, BELT_Y - 12, "c_t" + _value(values, "c"), anchor="end", quantity="c")
    d.note(400, BELT_Y - 26, "the cell state: a conveyor belt", fill=PALETTE["c"])

    # The four layers and where their outputs go.
    for gate, x, activation in (("f", fx, "σ"), ("g", gx, "tanh"), ("i", ix, "σ"), ("o", ox, "σ")):
        d.layer(x, GATE_Y, activation, gate, level=_level(values, gate))
    top = GATE_Y - BOX_HALF_HEIGHT
    d.wire([(fx, top), (fx, BELT_Y + 13)], "f")
    d.wire([(gx, top), (gx, 190), (377, 190)], "g")
    d.wire([(ix, top), (ix, 190), (403, 190)], "i")
    d.op(390, 190, "⊙")
    d.wire([(390, 177), (390, BELT_Y + 13)], "ink")
    d.wire([(tanh_x, BELT_Y), (tanh_x, 166)], "c")
    d.dot(tanh_x, BELT_Y, "c")
    d.op(tanh_x, 180, "tanh")
    d.wire([(tanh_x, 192), (tanh_x, GATE_Y - 13)], "ink")
    d.wire([(ox + 29, GATE_Y), (tanh_x - 13, GATE_Y)], "o")
    d.op(tanh_x, GATE_Y, "⊙")
    for gate, x, y in (
        ("f", fx, 200),
        ("g", gx, 222),
        ("i", ix, 222),
        ("o", *((606, 258) if values is None else (ox - 29, 242))),
    ):
        d.text(x + 7, y, f"{gate}_t" + _value(values, gate), anchor="start", size=15, quantity=gate)

    if peepholes:
        _peepholes(d, fx, ix, ox)
    if questions:
        for number, (gate, name, question) in enumerate(QUESTIONS, start=1):
            x = {"f": fx, "g": gx, "i": ix, "o": ox}[gate]
            d.badge(x - 40, GATE_Y - 24, number, gate)
            d.note(x, 418, f"{number} · {name}", fill=PALETTE[gate], weight="bold", size=13)
            d.note(x, 435, question, size=12)


def _peepholes(d: Drawing, fx: float, ix: float, ox: float) -> None:
    """c_{t-1} into f and i, c_t into o: dashed, in the cell state's colour."""
    dash = "6 4"
    d.dot(150, BELT_Y, "c")
    d.wire([(150, BELT_Y), (150, GATE_Y), (fx - 29, GATE_Y)], "c", dash=dash, width=2)
    d.dot(150, 236, "c")
    d.wire([(150, 236), (405, 236), (405, GATE_Y), (ix - 29, GATE_Y)], "c", dash=dash, halo="panel")
    d.dot(ox, BELT_Y, "c")
    d.wire([(ox, BELT_Y), (ox, GATE_Y - 18)], "c", dash=dash, width=2)
    d.text(154, 160, "c_{t-1}", anchor="start", size=14, quantity="c")
    d.text(ox + 6, 160, "c_t", anchor="start", size=14, quantity="c")


def lstm_cell(values: Mapping[str, float] | None = None, questions: bool = True) -> str:
    """The LSTM cell: the cell state as a belt, four layers, the four questions numbered.

    `values` (optional) maps "i", "f", "g", "o", "c", "c_prev" and "h" to one unit's values at
    one step; each is written beside its wire and each gate box is filled as far as it is open.
    """
    d = Drawing(
        800,
        520,
        "The LSTM cell",
        "The cell state c runs along the top like a conveyor belt: the forget gate f multiplies "
        "it, the input gate i times the candidate g is added to it. Below, four layers read "
        "h_{t-1} and x_t: 1 forget gate f (what can go?), 2 candidate g (what could I write?), "
        "3 input gate i (how much gets in?), 4 output gate o (what do I reveal?). "
        "h_t = o times tanh(c_t).",
    )
    draw_lstm(d, values, questions=questions)
    if values is not None and "h" in values:
        d.text(RIGHT - 6, BUS_Y + 22, f"h_t{_value(values, 'h')}", anchor="end", quantity="h")
    d.legend(40, 486)
    return d.svg()


def peephole_cell() -> str:
    """The peephole LSTM: c_{t-1} wired into i and f, c_t into o (dashed)."""
    d = Drawing(
        800,
        470,
        "The peephole LSTM cell",
        "An LSTM cell with peephole connections, drawn dashed: the previous cell state c_{t-1} "
        "feeds the forget gate f and the input gate i, the new cell state c_t feeds the output "
        "gate o. Each peephole is a diagonal weight: w_ci, w_cf, w_co.",
    )
    draw_lstm(d, questions=False, peepholes=True, entry_y=405)
    d.note(
        400,
        420,
        "dashed: peepholes, w_{cf} ⊙ c_{t-1} into f, w_{ci} ⊙ c_{t-1} into i, w_{co} ⊙ c_t into o",
        size=13,
    )
    d.legend(40, 450)
    return d.svg()


def draw_gru(d: Drawing, values: Mapping[str, float] | None = None, entry_y: float = 455) -> None:
    """The GRU cell on `d`, in the LSTM's frame: h itself is the memory along the top."""
    zx, rx, wx, nx, drop = 220, 330, 430, 540, 110
    d.rect(80, 60, 560, 330, stroke="muted")
    # The bus: h_{t-1} drops from the memory line; x_t arrives from below.
    d.dot(drop, BELT_Y, "h")
    d.wire([(drop, BELT_Y), (drop, BUS_Y - GAP), (wx, BUS_Y - GAP)], "h", arrow=False)
    d.wire([(140, entry_y), (140, BUS_Y + GAP), (nx + GAP, BUS_Y + GAP)], "x", arrow=False)
    for x in (zx, rx):
        d.wire([(x - GAP, BUS_Y - GAP), (x - GAP, GATE_Y + 18)], "h", arrow=False)
    d.wire([(wx, BUS_Y - GAP), (wx, GATE_Y + 14)], "h", arrow=False)
    for x in (zx, rx, nx):
        d.wire([(x + GAP, BUS_Y + GAP), (x + GAP, GATE_Y + 18)], "x", arrow=False)
    d.text(132, entry_y - 4, "x_t", anchor="end", quantity="x")
    d.wire([(700, BELT_Y), (700, 18)], "h")
    d.text(708, 34, "h_t", anchor="start", quantity="h")

    # The memory: h_{t-1} -> z ⊙ h_{t-1} -> + (1 - z) ⊙ n -> h_t.
    d.wire([(LEFT, BELT_Y), (RIGHT, BELT_Y)], "h", width=5)
    d.dot(700, BELT_Y, "h", radius=5)
    d.op(zx, BELT_Y, "⊙")
    d.op(nx, BELT_Y, "+")
    d.text(
        LEFT + 4, BELT_Y - 12, "h_{t-1}" + _value(values, "h_prev"), anchor="start", quantity="h"
    )
    d.text(RIGHT - 6, BELT_Y - 12, "h_t" + _value(values, "h"), anchor="end", quantity="h")
    d.note(380, BELT_Y - 26, "the hidden state is the memory", fill=PALETTE["h"])

    for gate, x, activation in (("z", zx, "σ"), ("r", rx, "σ"), ("n", nx, "tanh")):
        d.layer(x, GATE_Y, activation, gate, level=_level(values, gate))
    d.rect(wx - 24, GATE_Y - 14, 48, 28, fill="paper", stroke="h", radius=4)
    d.text(wx, GATE_Y + 5, "W_{hn}", size=14, quantity="h")
    top = GATE_Y - BOX_HALF_HEIGHT
    d.wire([(zx, top), (zx, BELT_Y + 13)], "z")
    d.dot(zx, 165, "z")
    d.wire([(zx, 165), (367, 165)], "z")
    d.op(380, 165, "1−")
    d.wire([(393, 165), (nx - 13, 165)], "z")
    d.wire([(rx, top), (rx, 215), (wx - 13, 215)], "r")
    d.wire([(wx, GATE_Y - 14), (wx, 228)], "h")
    d.op(wx, 215, "⊙")
    d.wire([(wx + 13, 215), (485, 215), (485, GATE_Y), (nx - 29, GATE_Y)], "ink")
    d.wire([(nx, top), (nx, 178)], "n")
    d.op(nx, 165, "⊙")
    d.wire([(nx, 152), (nx, BELT_Y + 13)], "ink")
    labels = (("z", zx + 7, 235), ("r", rx + 7, 240), ("n", nx + 7, 232))
    for gate, x, y in labels:
        d.text(x, y, f"{gate}_t" + _value(values, gate), anchor="start", size=15, quantity=gate)
    d.text(455, 157, "1 − z_t", size=14, quantity="z")


def gru_cell(values: Mapping[str, float] | None = None) -> str:
    """The GRU cell (PyTorch's form): update gate z, reset gate r, candidate n.

    `values` (optional) maps "r", "z", "n", "h_prev" and "h" to one unit's values at one step.
    """
    d = Drawing(
        800,
        520,
        "The GRU cell",
        "The hidden state h runs along the top and is the memory. The update gate z keeps the "
        "share z of h_{t-1} and fills the rest, 1 - z, with the candidate n. The reset gate r "
        "scales W_hn h_{t-1} + b_hn inside the candidate: n = tanh(W_in x_t + b_in + r * "
        "(W_hn h_{t-1} + b_hn)). There is no output gate and no separate cell state.",
    )
    draw_gru(d, values, entry_y=420)
    d.equation(400, 440, "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}")
    d.equation(400, 466, "n_t = tanh(W_{in} x_t + b_{in} + r_t ⊙ (W_{hn} h_{t-1} + b_{hn}))")
    d.legend(40, 498, ("σ", "tanh", "⊙", "+", "1−"))
    return d.svg()


def gru_beside_lstm() -> str:
    """The LSTM and the GRU side by side, at the same scale and in the same colours."""
    d = Drawing(
        1180,
        470,
        "The GRU beside the LSTM",
        "Left, the LSTM with its cell state c and four layers f, g, i, o. Right, the GRU: its "
        "update gate z does the jobs of f and i at once (keep z, write 1 - z), its candidate n "
        "plays the part of g, and it has no output gate and no separate cell state.",
    )
    scale = 0.72
    d.group(0, 36, scale)
    draw_lstm(d, questions=True)
    d.end_group()
    d.group(600, 36, scale)
    draw_gru(d)
    d.end_group()
    d.text(290, 26, "LSTM: gates i, f, g, o and a cell state c", size=17, italic=False)
    d.text(880, 26, "GRU: gates r, z, n; h is the memory", size=17, italic=False)
    d.note(880, 380, "z_t does f's and i's jobs: keep z_t, write 1 − z_t", size=13)
    d.note(880, 398, "n_t proposes, like g_t; r_t decides how much of h_{t-1} it sees", size=13)
    d.note(880, 416, "no output gate, no cell state: 3 blocks of weights, not 4", size=13)
    d.legend(150, 450, ("σ", "tanh", "⊙", "+", "1−"))
    return d.svg()


def cell_with_values(values: Mapping[str, float]) -> str | None:
    """The LSTM or GRU cell with one step's values written on it, chosen by the keys of
    `values` (i, f, g, o: LSTM; r, z, n: GRU); None for a cell without gates."""
    if {"i", "f", "g", "o"} <= set(values):
        return lstm_cell(values, questions=False)
    if {"r", "z", "n"} <= set(values):
        return gru_cell(values)
    return None


def step_values(gates: Mapping[str, Any], step: int, unit: int) -> dict[str, float]:
    """One unit's values at one step from a trace of one example ({name: (T, H)} arrays);
    with the previous memory (c_prev or h_prev, 0 before the first step) added."""
    values = {name: float(series[step][unit]) for name, series in gates.items()}
    memory = "c" if "c" in gates else "h"
    values[f"{memory}_prev"] = float(gates[memory][step - 1][unit]) if step > 0 else 0.0
    return values

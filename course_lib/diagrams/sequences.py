"""Cells over time: the RNN unrolled (with the gradient's way back), bidirectional, stacked.

A cell is drawn here as one box (its step, whatever the cell type); the wires between boxes are
what these figures are about. Chapter 01 (backpropagation through time: each step back
multiplies the gradient by J_t = diag(1 - h_t²) W_hh), chapter 05 (Schuster & Paliwal 1997:
the two directions meet only in the output, y_t = [→h_t; ←h_t]; a stack feeds layer l's outputs
to layer l + 1 as its inputs).
"""

from __future__ import annotations

from collections.abc import Sequence

from course_lib.diagrams.svg import PALETTE, Drawing

TOKENS = ("the", "dog", "ate", "?")  # the spaghetti question, shortened
CELL_W, CELL_H = 76, 46


def _cell(d: Drawing, x: float, y: float, label: str = "tanh") -> None:
    d.layer(x, y, label, "h", width=CELL_W, height=CELL_H)


def _inputs(d: Drawing, xs: Sequence[float], y_top: float, y: float, tokens=TOKENS) -> None:
    """x_1 ... x_T below the cells, with the words they embed."""
    for t, (x, token) in enumerate(zip(xs, tokens), start=1):
        name = "x_T" if t == len(xs) else f"x_{t}"
        d.wire([(x, y - 16), (x, y_top)], "x")
        d.text(x, y, name, quantity="x")
        d.note(x, y + 18, f"“{token}”", size=12)


def rnn_unrolled() -> str:
    """The recurrence folded (a loop) and unrolled over T steps, with BPTT's path back."""
    d = Drawing(
        940,
        420,
        "The tanh RNN unrolled over time, and the gradient's way back",
        "Left, the RNN as one cell with a loop. Right, the same cell unrolled over the steps "
        "1 to T, sharing its weights: x_t enters each copy, h_t passes to the next; the head "
        "reads h_T and the loss L is computed. Dashed, the gradient flows back from L through "
        "h_T, h_{T-1}, ..., multiplied at every step by J_t = diag(1 - h_t^2) W_hh, and fades.",
    )
    y = 210
    # Folded: one cell and its loop.
    _cell(d, 90, y)
    d.wire(
        [(128, y - 10), (150, y - 10), (150, y - 60), (30, y - 60), (30, y - 10), (52, y - 10)], "h"
    )
    d.text(90, y - 68, "h_{t-1} → h_t", size=14, quantity="h")
    d.wire([(90, 300), (90, y + CELL_H / 2)], "x")
    d.text(90, 318, "x_t", quantity="x")
    d.text(186, y + 8, "=", size=30, italic=False)
    d.note(186, y + 34, "unroll", size=12)

    xs = [290, 420, 550, 760]
    for t, x in enumerate(xs):
        _cell(d, x, y)
        if t + 1 < len(xs):
            target = xs[t + 1] - CELL_W / 2
            name = f"h_{t + 1}" if t < 2 else "h_{T-1}"
            if t == 2:  # the steps left out
                d.wire([(x + CELL_W / 2, y), (610, y)], "h", arrow=False)
                d.text(640, y + 6, "⋯", size=22, italic=False, fill=PALETTE["h"])
                d.wire([(668, y), (target, y)], "h")
                d.text(694, y - 10, name, size=13, quantity="h")
            else:
                d.wire([(x + CELL_W / 2, y), (target, y)], "h")
                d.text((x + target) / 2 + CELL_W / 4, y - 10, name, size=14, quantity="h")
    d.wire([(212, y), (xs[0] - CELL_W / 2, y)], "h")
    d.text(216, y - 10, "h_0", size=14, quantity="h", anchor="start")
    _inputs(d, xs, y + CELL_H / 2, 320)
    d.note(525, 382, "one cell, one set of weights W_{ih}, W_{hh}, b, reused at every step")

    # The head and the loss.
    last = xs[-1]
    d.wire([(last, y - CELL_H / 2), (last, 100)], "h")
    d.text(last - 8, 150, "h_T", anchor="end", quantity="h")
    d.rect(last - 40, 62, 80, 36, fill="paper", stroke="ink", radius=6)
    d.note(last, 85, "head", size=14, fill=PALETTE["ink"])
    d.wire([(last + 40, 80), (870, 80)], "ink")
    d.text(895, 86, "L", size=18)

    # Backpropagation through time: dashed, ever thinner and paler going back.
    grad_y = y + 40
    d.wire(
        [(880, 94), (880, 150), (last + 20, 150), (last + 20, y - CELL_H / 2 - 2)],
        "grad",
        dash="6 4",
        width=3,
    )
    widths = (3, 2.2, 1.5, 1.0)
    spans = [
        (last - CELL_W / 2, 670),
        (610, xs[2] + CELL_W / 2),
        (xs[2] - CELL_W / 2, xs[1] + CELL_W / 2),
        (xs[1] - CELL_W / 2, xs[0] + CELL_W / 2),
    ]
    for width, (start, end) in zip(widths, spans):
        d.wire(
            [(start, grad_y), (end, grad_y)],
            "grad",
            dash="6 4",
            width=width,
            opacity=0.35 + 0.2 * width,
        )
    # Going back from h_t to h_{t-1} multiplies by J_t: label each span by its step.
    for middle, label in (((xs[1] + xs[2]) / 2, "× J_3"), ((xs[0] + xs[1]) / 2, "× J_2")):
        d.text(middle, grad_y + 20, label, size=13, quantity="grad")
    d.text(696, grad_y + 20, "× J_T", size=13, quantity="grad")
    d.text(
        290,
        58,
        "∂L/∂h_t = ∂L/∂h_{t+1} · J_{t+1},   J_t = diag(1 − h_t^2) W_{hh}",
        size=15,
        quantity="grad",
        italic=False,
    )
    d.note(
        290,
        78,
        "dashed: the gradient's way back; each step multiplies it by J, and it fades",
        fill=PALETTE["grad"],
    )
    return d.svg()


def _direction_row(d: Drawing, xs: Sequence[float], y: float, forward: bool, symbol: str) -> None:
    """One direction's cells and the state passed between them (→ or ←)."""
    for x in xs:
        _cell(d, x, y, "cell")
    pairs = list(zip(xs[:-1], xs[1:]))
    for left, right in pairs:
        start, end = (left + CELL_W / 2, right - CELL_W / 2)
        if not forward:
            start, end = end, start
        d.wire([(start, y), (end, y)], "h")
    first = xs[0] - CELL_W / 2 - 40 if forward else xs[-1] + CELL_W / 2 + 40
    d.wire([(first, y), (first + (40 if forward else -40), y)], "h")
    d.text(
        first + (-6 if forward else 6),
        y + 5,
        "0",
        anchor="end" if forward else "start",
        size=14,
        quantity="h",
    )
    d.note(40, y + 5, symbol, size=13, anchor="start", fill=PALETTE["ink"])


def bidirectional() -> str:
    """A bidirectional layer: two rows of cells, one per direction; concatenation per step."""
    d = Drawing(
        900,
        470,
        "A bidirectional recurrent layer",
        "Two recurrent layers with their own weights read the same inputs x_1 to x_T, one left "
        "to right (forward states →h_t), one right to left (backward states ←h_t). They never "
        "exchange anything; at every step their states are concatenated, y_t = [→h_t; ←h_t], "
        "so the output has 2H features. h_n holds →h_T and ←h_1.",
    )
    xs = [260, 420, 580, 740]
    fwd_y, bwd_y, out_y = 300, 190, 70
    _direction_row(d, xs, fwd_y, True, "forward →")
    _direction_row(d, xs, bwd_y, False, "backward ←")
    for t, x in enumerate(xs, start=1):
        # x_t goes into both rows: straight up into the forward cell, around it to the backward.
        d.dot(x, 370, "x")
        d.wire([(x, 370), (x, fwd_y + CELL_H / 2)], "x")
        d.wire(
            [
                (x, 370),
                (x + 48, 370),
                (x + 48, bwd_y + CELL_H / 2 + 10),
                (x + 20, bwd_y + CELL_H / 2 + 10),
                (x + 20, bwd_y + CELL_H / 2),
            ],
            "x",
            halo="paper",
        )
        # Both states go up into y_t: forward around the backward cell, backward straight up.
        d.wire(
            [
                (x - 20, fwd_y - CELL_H / 2),
                (x - 20, fwd_y - 46),
                (x - 50, fwd_y - 46),
                (x - 50, out_y + 30),
                (x - 14, out_y + 30),
                (x - 14, out_y + 14),
            ],
            "h",
            halo="paper",
        )
        d.wire([(x, bwd_y - CELL_H / 2), (x, out_y + 14)], "h")
        d.rect(x - 30, out_y - 14, 30, 28, fill="h", radius=4)
        d.rect(x, out_y - 14, 30, 28, fill="paper", stroke="h", radius=4)
        d.text(x - 15, out_y + 5, "→", size=15, fill=PALETTE["paper"], italic=False)
        d.text(x + 15, out_y + 5, "←", size=15, quantity="h", italic=False)
        d.text(x + 40, out_y + 5, f"y_{t}" if t < len(xs) else "y_T", anchor="start", size=15)
        d.text(x, 392, f"x_{t}" if t < len(xs) else "x_T", quantity="x")
    d.note(
        500,
        30,
        "y_t = [→h_t ; ←h_t]: both directions, concatenated at every step (2H)",
        fill=PALETTE["ink"],
        size=13,
    )
    d.note(500, 425, "the rows never talk to each other; they meet only in y_t", size=13)
    d.note(500, 445, "h_n holds →h_T (after the last step) and ←h_1 (after the first)", size=13)
    return d.svg()


def stacked() -> str:
    """Two stacked layers: layer 1 reads layer 0's outputs, step by step; no wire goes down."""
    d = Drawing(
        900,
        450,
        "A stack of two recurrent layers",
        "Layer 0 reads the inputs x_1 to x_T; its outputs h^(0)_t are layer 1's inputs at the "
        "same step (with dropout between layers during training). Each layer has its own "
        "recurrence over time; information flows only upward between layers.",
    )
    xs = [260, 420, 580, 740]
    low_y, high_y, top_y = 300, 170, 50
    for y, layer in ((low_y, 0), (high_y, 1)):
        for x in xs:
            _cell(d, x, y, "cell")
        for left, right in zip(xs[:-1], xs[1:]):
            d.wire([(left + CELL_W / 2, y), (right - CELL_W / 2, y)], "h")
            d.text((left + right) / 2, y - 10, f"h^{{({layer})}}", size=13, quantity="h")
        d.wire([(xs[0] - CELL_W / 2 - 40, y), (xs[0] - CELL_W / 2, y)], "h")
        d.note(40, y + 5, f"layer {layer}", size=13, anchor="start", fill=PALETTE["ink"])
    for t, x in enumerate(xs, start=1):
        name = f"_{t}" if t < len(xs) else "_T"
        d.wire([(x, 370), (x, low_y + CELL_H / 2)], "x")
        d.text(x, 392, "x" + name, quantity="x")
        d.wire([(x, low_y - CELL_H / 2), (x, high_y + CELL_H / 2)], "h")
        d.text(x + 8, 240, f"h^{{(0)}}{name}", size=14, anchor="start", quantity="h")
        d.wire([(x, high_y - CELL_H / 2), (x, top_y + 16)], "h")
        d.text(x, top_y + 8, f"h^{{(1)}}{name}", size=14, quantity="h")
    d.note(120, 245, "dropout (training)", size=12)
    d.note(120, 112, "to the head", size=12)
    d.note(
        500, 425, "layer 0 reads x_t (I features); layer 1 reads h^{(0)}_t (D·H features)", size=13
    )
    d.note(500, 445, "h_n holds each layer's last state: h^{(0)}_T and h^{(1)}_T", size=13)
    return d.svg()

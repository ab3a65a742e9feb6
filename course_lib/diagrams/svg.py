"""The drawing primitives of the course's diagrams: one palette, one set of glyphs, plain SVG.

Every figure in `course_lib.diagrams` is built from the few pieces here, so the visual language
is defined once:

* **colour = quantity.** `PALETTE` gives one colour to the input x, the hidden state h, the cell
  state c, each gate (i, f, g, o of the LSTM; r, z, n of the GRU) and the attention quantities.
  A wire has the colour of what it carries; a layer box the colour of what it computes.
* **box = a layer with weights** (`Drawing.layer`): a rounded box in its quantity's colour with
  the activation written on it, ``σ`` or ``tanh``.
* **circle = an element-wise operation** (`Drawing.op`): ``⊙`` (product), ``+`` (sum), ``1−``,
  or ``tanh`` applied element by element, which has no weights.
* **labels use the equations' symbols**: ``h_{t-1}`` in a label is drawn as h with a subscript.

The output is deterministic text (no ids from counters, no dates), so a test can regenerate a
figure and compare it with the file in the repository byte for byte.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

# One colour per quantity. The gate colours i, f, g, o, c, h are matplotlib's tab10 colours that
# course_lib.viz uses for the same gates, so a diagram and a plot of the same gate agree.
PALETTE = {
    "x": "#17a2b8",  # input x_t
    "h": "#6c757d",  # hidden state h_t (the GRU's memory too)
    "c": "#d62728",  # cell state c_t: the belt
    "i": "#1f77b4",  # input gate
    "f": "#2ca02c",  # forget gate
    "g": "#9467bd",  # candidate (LSTM)
    "o": "#ff7f0e",  # output gate
    "r": "#8c564b",  # reset gate (GRU)
    "z": "#bcbd22",  # update gate (GRU)
    "n": "#e377c2",  # candidate (GRU)
    "s": "#393b79",  # decoder state s_t
    "q": "#3182bd",  # query
    "k": "#e6550d",  # key
    "v": "#31a354",  # value
    "alpha": "#7b4173",  # attention weights α
    "ctx": "#843c39",  # context vector c_t of attention
    "grad": "#e6194b",  # the gradient flowing back
    "ink": "#222222",  # text and neutral lines
    "muted": "#8a8a8a",  # secondary text
    "panel": "#f4f5f7",  # the cell's background
    "paper": "#ffffff",  # the figure's background
}
SERIF = "'DejaVu Serif', 'Times New Roman', Times, serif"  # symbols, as in the equations
SANS = "'DejaVu Sans', Helvetica, Arial, sans-serif"  # words

_SUBSCRIPT = re.compile(r"(\^|_)\{([^}]*)\}|(\^|_)(\w)")


def color(name: str) -> str:
    """The palette's colour for a quantity; a KeyError names the known ones."""
    if name not in PALETTE:
        raise KeyError(f"no colour for {name!r}; the palette has {sorted(PALETTE)}")
    return PALETTE[name]


def text_color_on(fill: str) -> str:
    """White or ink, whichever reads better on `fill` (by the fill's relative luminance)."""
    red, green, blue = (int(fill[k : k + 2], 16) / 255 for k in (1, 3, 5))
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return PALETTE["ink"] if luminance > 0.55 else PALETTE["paper"]


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def rich_text(label: str, size: float) -> str:
    """SVG text content for a label with ``_{...}`` subscripts and ``^{...}`` superscripts."""
    parts, position, offset = [], 0, 0.0  # offset: how far the pen is below the baseline
    for match in _SUBSCRIPT.finditer(label):
        parts.append(_tspan(label[position : match.start()], -offset))
        offset = 0.0 if match.start() > position else offset
        kind = match.group(1) or match.group(3)
        script = match.group(2) if match.group(2) is not None else match.group(4)
        target = size * (0.3 if kind == "_" else -0.4)
        small = _number(size * 0.72)
        dy = _number(target - offset)
        parts.append(
            f'<tspan dy="{dy}" font-size="{small}">{escape(script.replace("-", "−"))}</tspan>'
        )
        offset, position = target, match.end()
    parts.append(_tspan(label[position:], -offset))
    return "".join(part for part in parts if part)


def _tspan(text: str, dy: float) -> str:
    if not text:
        return ""  # nothing here: the next piece moves the pen instead
    return escape(text) if dy == 0 else f'<tspan dy="{_number(dy)}">{escape(text)}</tspan>'


class Drawing:
    """A figure being drawn: add shapes with the methods, then `svg()` returns the file's text.

    Coordinates are in pixels of the figure's own size (`width` × `height`), origin top left.
    `title` is the figure's accessible name (its <title>), `description` its longer text.
    """

    def __init__(self, width: int, height: int, title: str, description: str) -> None:
        self.width, self.height = width, height
        self.title, self.description = title, description
        self._markers: dict[str, str] = {}
        self._shapes: list[str] = []

    # -- lines ----------------------------------------------------------------------------------

    def _marker(self, fill: str) -> str:
        name = f"arrow-{fill.lstrip('#')}"
        self._markers[name] = (
            f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>'
        )
        return name

    def wire(
        self,
        points: list[tuple[float, float]],
        quantity: str = "ink",
        width: float = 2.0,
        arrow: bool = True,
        dash: str | None = None,
        opacity: float | None = None,
        halo: str | None = None,
    ) -> None:
        """A polyline through `points` in the colour of `quantity`, with an arrowhead at its end.

        `halo` (a palette name: the background's) draws a band of that colour under it first,
        so it reads as passing over the wire it crosses.
        """
        stroke = color(quantity)
        path = " ".join(f"{_number(x)},{_number(y)}" for x, y in points)
        if halo:
            self._shapes.append(
                f'<polyline points="{path}" fill="none" stroke="{color(halo)}" '
                f'stroke-width="{_number(width + 6)}"/>'
            )
        extra = ""
        if arrow:
            extra += f' marker-end="url(#{self._marker(stroke)})"'
        if dash:
            extra += f' stroke-dasharray="{dash}"'
        if opacity is not None:
            extra += f' stroke-opacity="{opacity:.2f}"'
        self._shapes.append(
            f'<polyline points="{path}" fill="none" stroke="{stroke}" '
            f'stroke-width="{_number(width)}" stroke-linejoin="round"{extra}/>'
        )

    def dot(self, x: float, y: float, quantity: str, radius: float = 3.5) -> None:
        """A junction: one wire splits into two."""
        self._shapes.append(
            f'<circle cx="{_number(x)}" cy="{_number(y)}" r="{_number(radius)}" '
            f'fill="{color(quantity)}"/>'
        )

    # -- boxes and glyphs -----------------------------------------------------------------------

    def rect(
        self,
        x: float,
        y: float,
        width: float,
        height: float,
        fill: str | None = "panel",
        stroke: str | None = None,
        radius: float = 14,
        dash: str | None = None,
        fill_opacity: float | None = None,
    ) -> None:
        """A rounded rectangle with its top left corner at (x, y); colours are palette names."""
        paint = color(fill) if fill else "none"
        line = f' stroke="{color(stroke)}" stroke-width="1.5"' if stroke else ""
        line += f' stroke-dasharray="{dash}"' if dash else ""
        line += f' fill-opacity="{fill_opacity:.2f}"' if fill_opacity is not None else ""
        self._shapes.append(
            f'<rect x="{_number(x)}" y="{_number(y)}" width="{_number(width)}" '
            f'height="{_number(height)}" rx="{_number(radius)}" fill="{paint}"{line}/>'
        )

    def layer(
        self,
        x: float,
        y: float,
        activation: str,
        quantity: str,
        width: float = 58,
        height: float = 36,
        level: float | None = None,
    ) -> None:
        """A layer with weights, centred at (x, y): ``σ`` or ``tanh`` on its quantity's colour.

        `level` in [0, 1] (a gate's current value) fills the box that far from the bottom, over
        a pale version of its colour: the gate explorer's picture of an open or closed gate.
        """
        left, top = x - width / 2, y - height / 2
        fill = color(quantity)
        if level is None:
            self.rect(left, top, width, height, fill=quantity, radius=6)
            ink = text_color_on(fill)
        else:
            level = min(max(float(level), 0.0), 1.0)
            self.rect(left, top, width, height, fill=quantity, radius=6, fill_opacity=0.22)
            if level > 0:
                self._shapes.append(
                    f'<rect x="{_number(left)}" y="{_number(top + height * (1 - level))}" '
                    f'width="{_number(width)}" height="{_number(height * level)}" rx="2" '
                    f'fill="{fill}"/>'
                )
            self.rect(left, top, width, height, fill=None, stroke=quantity, radius=6)
            ink = PALETTE["ink"] if level < 0.5 else text_color_on(fill)
        size = 19 if activation == "σ" else 15
        self.text(x, y + size * 0.35, activation, size=size, fill=ink, font=SERIF, italic=False)

    def op(self, x: float, y: float, glyph: str, radius: float = 13) -> None:
        """An element-wise operation centred at (x, y): ⊙, +, 1− or tanh (a wider pill)."""
        ink = PALETTE["ink"]
        if glyph == "tanh":
            self.rect(x - 24, y - 12, 48, 24, fill="paper", stroke="ink", radius=12)
            self.text(x, y + 5, "tanh", size=13, fill=ink, font=SERIF, italic=False)
            return
        self._shapes.append(
            f'<circle cx="{_number(x)}" cy="{_number(y)}" r="{_number(radius)}" '
            f'fill="{PALETTE["paper"]}" stroke="{ink}" stroke-width="1.5"/>'
        )
        if glyph == "⊙":  # drawn, not typed: fonts disagree on where ⊙ sits and how big it is
            self._shapes.append(
                f'<circle cx="{_number(x)}" cy="{_number(y)}" r="{_number(radius * 0.55)}" '
                f'fill="none" stroke="{ink}" stroke-width="1.4"/>'
                f'<circle cx="{_number(x)}" cy="{_number(y)}" r="1.8" fill="{ink}"/>'
            )
        elif glyph == "+":
            arm = radius * 0.55
            self._shapes.append(
                f'<path d="M{_number(x - arm)},{_number(y)} H{_number(x + arm)} '
                f'M{_number(x)},{_number(y - arm)} V{_number(y + arm)}" '
                f'stroke="{ink}" stroke-width="1.8"/>'
            )
        else:
            self.text(x, y + 5, glyph, size=13, fill=ink, font=SANS, italic=False)

    # -- text -----------------------------------------------------------------------------------

    def text(
        self,
        x: float,
        y: float,
        label: str,
        size: float = 16,
        fill: str | None = None,
        anchor: str = "middle",
        font: str = SERIF,
        italic: bool = True,
        weight: str = "normal",
        quantity: str | None = None,
    ) -> None:
        """A label whose baseline starts, centres or ends at (x, y), per `anchor`.

        `quantity` colours it like its wire; symbols are serif italic, as in the equations.
        """
        fill = color(quantity) if quantity else (fill or PALETTE["ink"])
        style = ' font-style="italic"' if italic else ""
        style += f' font-weight="{weight}"' if weight != "normal" else ""
        self._shapes.append(
            f'<text x="{_number(x)}" y="{_number(y)}" font-family="{font}" '
            f'font-size="{_number(size)}" fill="{fill}" text-anchor="{anchor}"{style}>'
            f"{rich_text(label, size)}</text>"
        )

    def equation(self, x: float, y: float, label: str, size: float = 16) -> None:
        """An equation under a figure: serif, upright (so that tanh and σ read as in print)."""
        self.text(x, y, label, size=size, italic=False)

    def note(self, x: float, y: float, label: str, size: float = 12.5, **kwargs) -> None:
        """Words (not symbols): upright sans serif, muted unless a colour is given."""
        kwargs.setdefault("fill", PALETTE["muted"])
        self.text(x, y, label, size=size, font=SANS, italic=False, **kwargs)

    def badge(self, x: float, y: float, number: int, quantity: str) -> None:
        """A numbered disc, e.g. the LSTM's four questions."""
        self._shapes.append(
            f'<circle cx="{_number(x)}" cy="{_number(y)}" r="10" fill="{color(quantity)}"/>'
        )
        ink = text_color_on(color(quantity))
        self.text(
            x, y + 4.5, str(number), size=13, fill=ink, font=SANS, italic=False, weight="bold"
        )

    def legend(self, x: float, y: float, items: tuple[str, ...] = ("σ", "tanh", "⊙", "+")) -> None:
        """One line that explains the glyphs used in this figure."""
        words = {
            "σ": "sigmoid layer, 0 to 1",
            "tanh": "tanh layer, −1 to 1",
            "⊙": "element-wise product",
            "+": "element-wise sum",
            "1−": "one minus",
            "tanh()": "element-wise tanh",
        }
        for item in items:
            if item in ("σ", "tanh"):
                self.layer(x + 18, y, item, "muted", width=36, height=22)
                offset = 42
            else:
                self.op(x + 18, y, "tanh" if item == "tanh()" else item, radius=10)
                offset = 46 if item == "tanh()" else 34
            self.note(x + offset, y + 4.5, words[item], size=12, anchor="start")
            x += offset + 6.3 * len(words[item]) + 24

    def group(self, dx: float, dy: float, scale: float = 1.0) -> None:
        """Shapes added from now on are shifted by (dx, dy) and scaled, until `end_group`."""
        zoom = f" scale({scale:g})" if scale != 1 else ""
        self._shapes.append(f'<g transform="translate({_number(dx)},{_number(dy)}){zoom}">')

    def end_group(self) -> None:
        self._shapes.append("</g>")

    # -- output ---------------------------------------------------------------------------------

    def svg(self) -> str:
        """The figure as the text of an SVG file (with width, height and a viewBox)."""
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-labelledby="title desc">\n'
            f'<title id="title">{escape(self.title)}</title>\n'
            f'<desc id="desc">{escape(self.description)}</desc>\n'
        )
        markers = "".join(self._markers[name] for name in sorted(self._markers))
        defs = f"<defs>{markers}</defs>\n" if markers else ""
        background = f'<rect width="100%" height="100%" fill="{PALETTE["paper"]}"/>\n'
        return head + defs + background + "\n".join(self._shapes) + "\n</svg>\n"

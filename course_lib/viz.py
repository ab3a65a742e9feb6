"""Plots and interactive explorers for the course.

Plots: :func:`plot_history`, :func:`plot_accuracy_by_distance`, :func:`plot_grad_norms`,
:func:`plot_gates`, :func:`plot_attention`. Each returns a matplotlib ``Figure`` that is *not*
left open in pyplot: end a cell with the call (or ``display(fig)``) and it shows exactly once, in
JupyterLab and in an executed notebook alike; ``fig.savefig(...)`` writes it to a file. (A figure
left open in pyplot would be shown a second time by the inline backend at the end of the cell.)

Explorers: :func:`gate_explorer` steps through a sequence and shows every gate and the cell
state at that step; :func:`attention_explorer` picks an output step and shows where attention
looks. Each returns an :class:`Explorer`, an ``ipywidgets.VBox`` whose picture is an
``ipywidgets.Image`` redrawn with the Agg renderer on every change. That needs no display and no
interactive backend, so the same code runs in JupyterLab, under nbval / nbclient, and in plain
pytest (``explorer.update(step=3)`` changes the picture, ``explorer.png`` is its bytes). Where no
widget can be shown (a notebook viewed on GitHub), the output falls back to a still image.

Shapes: T time, B batch, H hidden units, S source positions, Tq output (query) steps.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib._validate import check_index, check_lengths, check_number
from course_lib.diagrams import cells as diagrams
from course_lib.diagrams.svg import PALETTE

# One colour per gate name, the same in every panel and every plot, and the same as in the
# course's diagrams: both come from one palette (course_lib.diagrams.svg.PALETTE).
GATE_COLORS = {name: PALETTE[name] for name in ("i", "f", "g", "o", "c", "h", "r", "z", "n")}
GATE_NAMES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell state c",
    "h": "hidden state h",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
}
SIGMOID_GATES = ("i", "f", "o", "r", "z")  # values in (0, 1); the others lie in (-1, 1) or beyond
# One marker and one line style per series where lines may coincide (accuracy against distance).
# 5 markers against 4 styles: a pair repeats only after 20 series.
SERIES_MARKERS = ("o", "s", "^", "D", "v")
SERIES_LINESTYLES = ("-", "--", "-.", ":")


# -- helpers ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A new figure, closed in pyplot at once: it is returned, and shown only when displayed."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig


def _array(name: str, value: object, ndim: tuple[int, ...]) -> np.ndarray:
    """A tensor, array or list as a float NumPy array of one of the allowed ranks."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().float().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be numbers (a tensor, array or list), got {type(value).__name__}"
        ) from error
    if array.ndim not in ndim:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {array.shape}"
        )
    return array


def _named_series(name: str, value: object) -> dict[str, object]:
    """One series or a dict of named series -> dict name -> series."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"{name} is an empty dict; give at least one series")
        return {str(key): series for key, series in value.items()}
    return {"": value}


def _set_token_ticks(
    ax, tokens: Sequence[str] | None, count: int, axis: str = "x", keep: Iterable[int] = ()
) -> None:
    """Label positions 0..count-1 with tokens: every one up to 100 (smaller type past 40), else
    every k-th; and always the positions in ``keep``, in bold, so that thinning never hides the
    token the reader is looking at (the current step, or "dog" in the spaghetti question)."""
    if tokens is None:
        return
    if len(tokens) != count:
        raise ValueError(f"got {len(tokens)} tokens for {count} positions")
    step = max(1, int(np.ceil(count / 100)))
    kept = {int(p) for p in keep if 0 <= p < count}
    positions = sorted(set(range(0, count, step)) | kept)
    labels = [str(tokens[p]) for p in positions]
    fontsize = 8 if count <= 40 else 6
    if axis == "x":
        ticks = ax.set_xticks(positions, labels, rotation=90, fontsize=fontsize)
    else:
        ticks = ax.set_yticks(positions, labels, fontsize=fontsize)
    for position, tick in zip(positions, ticks):
        if position in kept:
            tick.label1.set_fontweight("bold")


def _smooth(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Running mean over ~1/50 of the run, so a noisy per-step loss reads as a trend."""
    window = max(1, len(values) // 50)
    if window == 1:
        return values, 1
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), window


# -- plots --------------------------------------------------------------------------------------


def _history_series(history: Any) -> tuple[dict[str, tuple], dict[str, tuple], str]:
    """(loss curves, score curves, metric name) of one history; each curve is (x, y)."""
    if hasattr(history, "loss") and hasattr(history, "scores"):  # course_lib.training.History
        loss = np.asarray(history.loss, dtype=float)
        scores: dict[str, tuple] = {}
        if len(history.scores):
            scores = {"": (np.asarray(history.eval_steps), np.asarray(history.scores, dtype=float))}
        return (
            {"": (np.arange(1, len(loss) + 1), loss)},
            scores,
            getattr(history, "metric", "score"),
        )
    if isinstance(history, Mapping):  # e.g. {"loss": [...], "accuracy": [...]}
        losses: dict[str, tuple] = {}
        scores = {}
        for key, values in history.items():
            y = _array(f"history[{key!r}]", values, (1,))
            (losses if "loss" in str(key) else scores)[str(key)] = (np.arange(1, len(y) + 1), y)
        return losses, scores, "score"
    raise TypeError(
        "history must be a course_lib.training.History or a dict of lists, "
        f"got {type(history).__name__}"
    )


def plot_history(
    history: Any, title: str = "Training history", chance: float | None = None
) -> Figure:
    """Training loss (left) and validation score (right) against the training step.

    ``history`` is a :class:`course_lib.training.History`, a dict of lists (keys with "loss" go
    left), or a dict ``{name: history}`` to compare runs (one line per run, with a legend).
    ``chance`` draws the task's chance level on the score panel; an accuracy panel starts at 0.
    """
    if chance is not None:
        chance = check_number("chance", chance, 0.0, 1.0)
    is_many = (
        isinstance(history, Mapping)
        and history
        and all(hasattr(h, "loss") or isinstance(h, Mapping) for h in history.values())
    )
    runs = {str(k): v for k, v in history.items()} if is_many else {"": history}
    fig = _figure(11, 3.6)
    ax_loss, ax_score = fig.subplots(1, 2)
    metric = "score"
    for run, item in runs.items():
        losses, scores, metric = _history_series(item)
        for key, (x, y) in losses.items():
            y_smooth, window = _smooth(y)
            label = " ".join(part for part in (run, key) if part) or "training loss"
            ax_loss.plot(x[window - 1 :], y_smooth, label=label)
        for key, (x, y) in scores.items():
            label = " ".join(part for part in (run, key) if part) or f"validation {metric}"
            ax_score.plot(x, y, marker="o", markersize=3, label=label)
    ax_loss.set(title="training loss (running mean)", xlabel="training step", ylabel="loss")
    ax_score.set(title=f"validation {metric}", xlabel="training step", ylabel=metric)
    if chance is not None:
        ax_score.axhline(
            chance, color="black", linestyle="--", linewidth=1, label=f"chance ({chance:.3g})"
        )
    if metric == "accuracy":
        ax_score.set_ylim(0, 1.05)
    # One legend, beside the score panel (it names both panels' runs), never over a curve.
    ax = ax_score if ax_score.lines else ax_loss
    if ax.lines:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    return fig


def plot_accuracy_by_distance(
    results: Mapping[str, Any],
    chance: float | None = None,
    title: str = "Accuracy against distance",
    xlabel: str = "distance (tokens between the fact and the question)",
    ylabel: str = "accuracy",
) -> Figure:
    """One line per model: accuracy at each distance, with chance level as a dashed line.

    ``results`` maps a name to ``(distances, accuracies)`` or to ``{distance: accuracy}`` (what
    :func:`course_lib.training.accuracy_by_distance` returns).

    Models often score exactly alike (all at 1.0, or all at chance), and then their lines lie
    on top of each other. Each line therefore has its own marker and line style, and the
    earlier ones are drawn thicker and with larger markers, underneath the later ones: where
    lines coincide, each stays visible around the next, at its true values.
    """
    if not isinstance(results, Mapping) or not results:
        raise TypeError("results must be a non-empty dict: name -> (distances, accuracies)")
    fig = _figure(8, 4)
    ax = fig.subplots()
    count = len(results)
    for index, (name, value) in enumerate(results.items()):
        if isinstance(value, Mapping):
            distances, accuracies = list(value.keys()), list(value.values())
        else:
            distances, accuracies = value
        x = _array(f"results[{name!r}] distances", distances, (1,))
        y = _array(f"results[{name!r}] accuracies", accuracies, (1,))
        if x.shape != y.shape:
            raise ValueError(f"results[{name!r}]: {len(x)} distances but {len(y)} accuracies")
        under = min(count - 1 - index, 4)  # lines drawn on top of this one (sizes capped)
        ax.plot(
            x,
            y,
            marker=SERIES_MARKERS[index % len(SERIES_MARKERS)],
            linestyle=SERIES_LINESTYLES[index % len(SERIES_LINESTYLES)],
            markersize=5 + 2 * under,
            linewidth=1.5 + 0.75 * under,
            label=str(name),
        )
    if chance is not None:
        ax.axhline(
            chance, color="black", linestyle="--", linewidth=1, label=f"chance ({chance:.3g})"
        )
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.05))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over, data
    return fig


def plot_grad_norms(
    norms: object,
    title: str = "Gradient norm over time",
    xlabel: str = "time step t",
    ylabel: str = "gradient norm ‖∂L/∂h_t‖ (log scale)",
) -> Figure:
    """Gradient norms against the time step on a log scale: one series or a dict name -> series."""
    fig = _figure(8, 4)
    ax = fig.subplots()
    series = _named_series("norms", norms)
    for name, values in series.items():
        y = _array(f"norms[{name!r}]" if name else "norms", values, (1,))
        ax.plot(np.arange(len(y)), y, label=name or "gradient norm")
    ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over, data
    return fig


def _trace_example(
    trace: Mapping[str, object], example: int, batch_first: bool
) -> dict[str, np.ndarray]:
    """One example of a gate trace as {name: (T, H) array}."""
    if not isinstance(trace, Mapping) or not trace:
        raise TypeError(
            "trace must be a non-empty dict of gate name -> (T, B, H) tensor, as gate_trace returns"
        )
    out = {}
    for name, value in trace.items():
        array = _array(f"trace[{name!r}]", value, (2, 3))
        if array.ndim == 3:
            array = array if batch_first else array.transpose(1, 0, 2)  # (B, T, H)
            if not -array.shape[0] <= example < array.shape[0]:
                raise ValueError(f"example must be in 0..{array.shape[0] - 1}, got {example}")
            array = array[example]
        out[name] = array  # (T, H)
    return out


def _gate_style(name: str, values: np.ndarray) -> dict:
    """imshow colours: 0..1 for sigmoid gates, symmetric around 0 for the rest."""
    if name in SIGMOID_GATES:
        return {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
    limit = max(1.0, float(np.abs(values).max())) if values.size else 1.0
    return {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}


def plot_gates(
    trace: Mapping[str, object],
    tokens: Sequence[str] | None = None,
    example: int = 0,
    batch_first: bool = True,
    title: str = "Gates over time",
) -> Figure:
    """One heatmap per gate (units × time) of one example of a ``gate_trace`` dict.

    Values are (T, H), (B, T, H) with ``batch_first`` (the course's layout) or (T, B, H).
    """
    gates = _trace_example(trace, example, batch_first)
    T = next(iter(gates.values())).shape[0]
    fig = _figure(max(6.0, 0.22 * T + 2.5), 1.7 * len(gates) + 0.8)
    axes = np.atleast_1d(fig.subplots(len(gates), 1, sharex=True))
    for ax, (name, values) in zip(axes, gates.items()):
        image = ax.imshow(
            values.T, aspect="auto", interpolation="nearest", **_gate_style(name, values)
        )
        ax.set(ylabel="unit", title=GATE_NAMES.get(name, name))
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1].set_xlabel("time step (token)")
    _set_token_ticks(axes[-1], tokens, T)
    fig.suptitle(title)
    return fig


def plot_attention(
    weights: object,
    source_tokens: Sequence[str] | None = None,
    target_tokens: Sequence[str] | None = None,
    title: str = "Attention weights",
    xlabel: str = "source position (key)",
    ylabel: str = "output step (query)",
) -> Figure:
    """Heatmap of attention weights (Tq, S): row t shows where output step t looked.

    A single query's weights (S,) (e.g. an attentive reader's) are drawn as one row.
    """
    w = _array("weights", weights, (1, 2))
    w = w[None, :] if w.ndim == 1 else w  # (Tq, S)
    Tq, S = w.shape
    fig = _figure(max(4.5, 0.25 * S + 2), max(2.2, 0.25 * Tq + 1.5))
    ax = fig.subplots()
    image = ax.imshow(w, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="weight α")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    _set_token_ticks(ax, source_tokens, S, "x")
    _set_token_ticks(ax, target_tokens, Tq, "y")
    return fig


# -- explorers ----------------------------------------------------------------------------------


class Explorer(widgets.VBox):
    """Controls above a picture; ``update(**values)`` sets controls and redraws.

    Attributes: ``figure`` (the matplotlib Figure that is redrawn), ``image`` (the Image widget),
    ``controls`` (name -> widget), ``png`` (the current picture's bytes). ``css_class`` goes on
    the outer box (``add_class``), so a page, or a browser test, can find the explorer by it.
    """

    dpi = 80  # resolution of the picture: sharp enough on screen, quick to redraw

    def __init__(
        self,
        controls: dict[str, widgets.Widget],
        draw,
        width: float,
        height: float,
        css_class: str,
    ) -> None:
        self.controls = controls
        self.figure = Figure(figsize=(width, height), layout="constrained")  # never in pyplot
        self._draw = draw
        self._holding = False
        # The box is a flex column, which stretches its children to its full width: the picture
        # would be widened but not heightened. So: its own width (at most the output's), the
        # height that follows from it, and "contain" should a box ever force another shape.
        picture_layout = widgets.Layout(
            max_width="100%", height="auto", align_self="flex-start", object_fit="contain"
        )
        self.image = widgets.Image(format="png", layout=picture_layout)
        rows = [widgets.HBox(list(controls.values()))]
        if "step" in controls:  # a play button that walks the step slider forward, in the browser
            slider = controls["step"]
            self.play = widgets.Play(
                value=0, min=slider.min, max=slider.max, interval=700, description="play"
            )
            widgets.jslink((self.play, "value"), (slider, "value"))
            rows = [widgets.HBox([self.play, *controls.values()])]
        super().__init__([*rows, self.image])
        self.add_class(css_class)
        for control in controls.values():
            control.observe(self._redraw, names="value")
        self._redraw()

    @property
    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    @property
    def png(self) -> bytes:
        return self.image.value

    def update(self, **values: object) -> None:
        """Set controls by name, e.g. ``update(step=5)``, and redraw (once per change)."""
        for name in values:
            if name not in self.controls:
                raise ValueError(
                    f"no control named {name!r}; the controls are {list(self.controls)}"
                )
        self._holding = True  # set them all, then draw once
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self._redraw()

    def _redraw(self, change: object = None) -> None:
        if self._holding:
            return
        self.figure.clear()
        self._draw(self.figure, **self.values)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=self.dpi)
        self.image.value = buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        # The live widget where a widget manager runs (JupyterLab ranks it first); a still image
        # for viewers without one (GitHub), since the notebooks are saved without widget state.
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["image/png"] = base64.b64encode(self.png).decode("ascii")  # JSON carries text
        return bundle


def _tokens_per_example(tokens: Any, count: int, name: str) -> list[list[str] | None]:
    """None, one token list (shared), or one list per example -> one entry per example."""
    if tokens is None:
        return [None] * count
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], (list, tuple)):
        if len(tokens) != count:
            raise ValueError(f"{name} has {len(tokens)} lists for {count} examples")
        return [list(t) for t in tokens]
    return [[str(t) for t in tokens]] * count


def _highlighted_positions(
    highlight: object, token_lists: list[list[str] | None]
) -> list[list[int]]:
    """Per example, the positions whose token is one of the words in ``highlight``."""
    words = (highlight,) if isinstance(highlight, str) else highlight
    if not isinstance(words, Sequence) or not all(isinstance(w, str) for w in words):
        raise TypeError(f"highlight must be a word or a list of words, got {highlight!r}")
    if not words:
        return [[] for _ in token_lists]
    if all(tokens is None for tokens in token_lists):
        raise ValueError("highlight needs token labels: pass tokens=, or vocab= with token ids")
    labels = [[str(token) for token in tokens or []] for tokens in token_lists]
    unknown = [w for w in words if not any(w in example for example in labels)]
    if unknown:
        raise ValueError(f"highlight words {unknown} are not among the tokens")
    return [[p for p, token in enumerate(example) if token in words] for example in labels]


def _run_gate_trace(
    source: object, inputs: object, layer: int, reverse: bool, batch_first: bool
) -> tuple[dict, bool]:
    """The trace dict and its layout, from a ready dict, a layer, or a course model (an
    ``embedding`` and an ``rnn`` or ``encoder`` layer)."""
    if isinstance(source, Mapping):
        return dict(source), batch_first
    if inputs is None:
        raise ValueError(
            "inputs is needed to run a layer or model; or pass a gate_trace dict as source"
        )
    with torch.no_grad():
        if hasattr(source, "gate_trace"):
            trace = source.gate_trace(inputs, layer=layer, reverse=reverse)
            return trace, getattr(source, "batch_first", batch_first)
        rnn = getattr(source, "rnn", None) or getattr(source, "encoder", None)
        if hasattr(source, "embedding") and rnn is not None and hasattr(rnn, "gate_trace"):
            trace = rnn.gate_trace(source.embedding(inputs), layer=layer, reverse=reverse)
            return trace, getattr(rnn, "batch_first", batch_first)
    raise TypeError(
        "source must be a gate_trace dict, a layer with gate_trace (course_lib.layers), or a model "
        f"with .embedding and .rnn (course_lib.models); got {type(source).__name__}"
    )


def gate_explorer(
    source: object,
    inputs: object = None,
    vocab: Sequence[str] | None = None,
    *,
    tokens: object = None,
    lengths: object = None,
    layer: int = 0,
    reverse: bool = False,
    batch_first: bool = True,
    keys: Sequence[str] | None = None,
    unit: int | None = None,
    highlight: str | Sequence[str] = (),
) -> Explorer:
    """Step through sequences and watch the gates and the cell state.

    ``source``: a ``gate_trace`` dict, a course_lib layer (then ``inputs`` are its float inputs),
    or a course_lib.models model (then ``inputs`` are token ids (B, T) and ``vocab`` names them).
    ``tokens`` labels the steps instead (one list, or one per example); ``lengths`` hides padding.

    Controls: example, unit, the gate shown as a heatmap, and the time step. The picture: the
    heatmap over time (units × steps) with the current step marked; the chosen unit's gates
    over time; and their values at the current step. ``unit`` is the unit shown first; by
    default the one whose cell state (or hidden state) is largest on average, often the one
    that holds the fact.

    The steps are labelled with their tokens: every one up to 100 steps, every k-th beyond.
    The current step is always labelled, and so is every occurrence of a word in ``highlight``
    (e.g. ``highlight=("dog", "cat")``), both in bold.
    """
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 1 and not inputs.is_floating_point():
        inputs = inputs.unsqueeze(0)  # one sequence of ids -> a batch of one
    trace, batch_first = _run_gate_trace(source, inputs, layer, reverse, batch_first)
    first = _array("trace", next(iter(trace.values())), (2, 3))
    B = 1 if first.ndim == 2 else first.shape[0 if batch_first else 1]
    examples = [_trace_example(trace, b, batch_first) for b in range(B)]  # each {name: (T, H)}
    keys = list(keys) if keys is not None else [k for k in trace if not ("c" in trace and k == "h")]
    missing = [k for k in keys if k not in trace]
    if missing:
        raise ValueError(f"keys {missing} are not in the trace, which has {list(trace)}")

    if (
        tokens is None
        and vocab is not None
        and isinstance(inputs, torch.Tensor)
        and not inputs.is_floating_point()
    ):
        tokens = [[str(vocab[i]) for i in row] for row in inputs.reshape(B, -1).tolist()]
    token_lists = _tokens_per_example(tokens, B, "tokens")
    T, H = examples[0][keys[0]].shape
    real = [T] * B if lengths is None else check_lengths(lengths, B, T).tolist()
    highlighted = _highlighted_positions(highlight, token_lists)  # per example

    if unit is None:
        # Start at the unit whose memory (c, or h without a cell) is largest on average.
        memory = examples[0].get("c", examples[0].get("h", examples[0][keys[0]]))  # (T, H)
        unit = int(np.abs(memory).mean(0).argmax())
    else:
        unit = check_index("unit", unit, H)
    heat_default = next((k for k in ("f", "z", "h") if k in keys), keys[0])

    controls: dict[str, widgets.Widget] = {}
    if B > 1:
        controls["example"] = widgets.Dropdown(
            options=list(range(B)), value=0, description="example"
        )
    controls["unit"] = widgets.Dropdown(options=list(range(H)), value=unit, description="unit")
    controls["heatmap"] = widgets.Dropdown(
        options=[(GATE_NAMES.get(k, k), k) for k in keys], value=heat_default, description="heatmap"
    )
    controls["step"] = widgets.IntSlider(0, 0, T - 1, description="step", continuous_update=False)

    def draw(fig: Figure, step: int, unit: int, heatmap: str, example: int = 0) -> None:
        gates, labels, length = examples[example], token_lists[example], real[example]
        step = min(step, length - 1)
        labels = None if labels is None else labels[:length]
        word = f" ({labels[step]!r})" if labels else ""
        grid = fig.add_gridspec(2, 3)
        ax_heat = fig.add_subplot(grid[0, :])
        ax_lines = fig.add_subplot(grid[1, :2], sharex=ax_heat)
        ax_bars = fig.add_subplot(grid[1, 2])

        # 1. Heatmap of one gate over time, all units; the current step and unit marked.
        values = gates[heatmap][:length]  # (T, H)
        image = ax_heat.imshow(
            values.T, aspect="auto", interpolation="nearest", **_gate_style(heatmap, values)
        )
        fig.colorbar(image, ax=ax_heat, pad=0.01)
        ax_heat.axvline(step, color="red", linewidth=2)
        ax_heat.axhline(unit, color="white", linewidth=0.8, linestyle=":")
        ax_heat.set(title=f"{GATE_NAMES.get(heatmap, heatmap)}, all units", ylabel="unit")

        # 2. The chosen unit's gates over time.
        for key in keys:
            ax_lines.plot(gates[key][:length, unit], color=GATE_COLORS.get(key), label=key)
        ax_lines.axvline(step, color="red", linewidth=2)
        ax_lines.set(title=f"unit {unit} over time", xlabel="time step (token)", ylabel="value")
        ax_lines.legend(fontsize=8, ncol=len(keys), loc="lower left")
        keep = [step, *(p for p in highlighted[example] if p < length)]
        _set_token_ticks(ax_lines, labels, length, keep=keep)
        ax_heat.tick_params(labelbottom=False)

        # 3. Their values at this step.
        now = [float(gates[key][step, unit]) for key in keys]
        ax_bars.bar(keys, now, color=[GATE_COLORS.get(k, "tab:blue") for k in keys])
        for x, value in enumerate(now):
            ax_bars.annotate(
                f"{value:.2f}",
                (x, value),
                ha="center",
                va="bottom" if value >= 0 else "top",
                fontsize=8,
            )
        ax_bars.axhline(0, color="black", linewidth=0.8)
        limit = max(1.05, max(abs(v) for v in now) * 1.15)
        bottom = -limit if min(now) < 0 else 0.0
        ax_bars.set(title=f"step {step}{word}", xlabel="gate", ylabel="value", ylim=(bottom, limit))
        fig.suptitle(f"Gates of example {example}, unit {unit}, at step {step}{word}")

    explorer = Explorer(
        controls, draw, width=max(8.0, 0.2 * T + 3), height=6.0, css_class="course-gate-explorer"
    )
    _attach_cell_diagram(explorer, examples, real)
    return explorer


def _attach_cell_diagram(explorer: Explorer, examples: list[dict], real: list[int]) -> None:
    """Put the cell's diagram (course_lib.diagrams) above the plot, with the current step's
    values of the chosen unit written on it; redrawn whenever a control changes. An LSTM or
    GRU trace gets one; a tanh RNN's, which has no gates, none."""

    def current_svg() -> str | None:
        values = explorer.values
        example = values.get("example", 0)
        step = min(values["step"], real[example] - 1)
        return diagrams.cell_with_values(
            diagrams.step_values(examples[example], step, values["unit"])
        )

    svg = current_svg()
    if svg is None:
        explorer.diagram = None
        return
    layout = widgets.Layout(width="560px", max_width="100%", height="auto")
    explorer.diagram = widgets.Image(value=svg.encode(), format="svg+xml", layout=layout)
    explorer.diagram.add_class("course-cell-diagram")

    def redraw(change: object = None) -> None:
        svg = current_svg()
        if svg is not None:  # the same trace always has a diagram; this narrows the type
            explorer.diagram.value = svg.encode()

    for control in explorer.controls.values():
        control.observe(redraw, names="value")
    *rows, image = explorer.children
    explorer.children = (*rows, explorer.diagram, image)


def attention_explorer(
    weights: object,
    source_tokens: object = None,
    target_tokens: object = None,
) -> Explorer:
    """Pick an output step (and an example) and see where attention looks.

    ``weights``: (Tq, S) or (B, Tq, S). Token lists: one list, or one per example.
    The picture: the whole weight matrix with the chosen row framed, and that row as bars over
    the source tokens, the most-attended one named in the title.
    """
    w = _array("weights", weights, (2, 3))
    w = w[None] if w.ndim == 2 else w  # (B, Tq, S)
    B, Tq, S = w.shape
    sources = _tokens_per_example(source_tokens, B, "source_tokens")
    targets = _tokens_per_example(target_tokens, B, "target_tokens")
    for b in range(B):
        for name, tokens, count in (
            ("source_tokens", sources[b], S),
            ("target_tokens", targets[b], Tq),
        ):
            if tokens is not None and len(tokens) != count:
                raise ValueError(
                    f"{name} has {len(tokens)} tokens but the weights have {count} positions"
                )

    controls: dict[str, widgets.Widget] = {}
    if B > 1:
        controls["example"] = widgets.Dropdown(
            options=list(range(B)), value=0, description="example"
        )
    controls["step"] = widgets.IntSlider(
        0, 0, Tq - 1, description="output step", continuous_update=False
    )

    def draw(fig: Figure, step: int, example: int = 0) -> None:
        matrix, src, tgt = w[example], sources[example], targets[example]
        ax_map, ax_row = fig.subplots(1, 2, width_ratios=[1, 1.4])
        ax_map.imshow(matrix, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1)
        ax_map.add_patch(
            plt.Rectangle((-0.5, step - 0.5), S, 1, fill=False, edgecolor="red", linewidth=2)
        )
        ax_map.set(title="all output steps", xlabel="source position", ylabel="output step")
        row = matrix[step]
        best = int(row.argmax())
        _set_token_ticks(ax_map, src, S, "x", keep=[best])
        _set_token_ticks(ax_map, tgt, Tq, "y", keep=[step])

        colors = ["tab:red" if s == best else "tab:blue" for s in range(S)]
        ax_row.bar(np.arange(S), row, color=colors)
        ax_row.set(ylim=(0, 1.05), xlabel="source position", ylabel="attention weight α")
        _set_token_ticks(ax_row, src, S, "x", keep=[best])
        out_word = f" ({tgt[step]!r})" if tgt else ""
        in_word = f" ({src[best]!r})" if src else ""
        ax_row.set_title(f"output step {step}{out_word} looks most at position {best}{in_word}")
        fig.suptitle(f"Where attention looks, example {example}")

    return Explorer(
        controls,
        draw,
        width=max(9.0, 0.35 * S + 4),
        height=max(4.2, 0.15 * Tq + 2),
        css_class="course-attention-explorer",
    )

"""course_lib.viz: every plot has a title, axis labels and (with several lines) a legend, stays out
of pyplot (so a notebook shows it once), and the explorers build and redraw without a display."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: what nbval / nbclient and CI see

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from ipywidgets import VBox  # noqa: E402

from course_lib import viz  # noqa: E402
from course_lib.layers import GRU, LSTM  # noqa: E402
from course_lib.training import History  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    """Explorers redraw a PNG at every change; a coarse one is enough for these checks."""
    monkeypatch.setattr(viz.Explorer, "dpi", 30)


def check_figure(fig, legend: bool = True):
    """A titled figure whose every axes with data has axis labels, and a legend where asked."""
    assert isinstance(fig, matplotlib.figure.Figure)
    assert fig not in [plt.figure(n) for n in plt.get_fignums()], "figure left open in pyplot"
    titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    assert any(titles), "no title"
    data_axes = [ax for ax in fig.axes if ax.lines or ax.images or ax.patches]
    assert data_axes
    for ax in data_axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_ylabel(), f"axes {ax.get_title()!r} lacks a y label"
        # stacked axes that share x are labelled once, at the bottom
        shared = ax.get_shared_x_axes().get_siblings(ax)
        assert any(other.get_xlabel() for other in shared), (
            f"axes {ax.get_title()!r} lacks an x label"
        )
    if legend:
        assert any(ax.get_legend() is not None for ax in fig.axes), "no legend"
    fig.savefig(io.BytesIO(), format="png", dpi=30)  # renders without a display


def history(final: float) -> History:
    return History(
        metric="accuracy",
        loss=list(np.linspace(1.5, 0.2, 120)),
        eval_steps=[40, 80, 120],
        scores=[0.3, 0.6, final],
    )


def test_plot_history_single_and_many():
    check_figure(viz.plot_history(history(0.9)))
    fig = viz.plot_history({"lstm": history(0.9), "rnn": history(0.4)})
    check_figure(fig)
    labels = [line.get_label() for line in fig.axes[1].lines]
    assert labels == ["lstm", "rnn"]
    check_figure(viz.plot_history({"loss": [1.0, 0.5, 0.2], "accuracy": [0.2, 0.5, 0.8]}))
    with pytest.raises(TypeError, match="history must be"):
        viz.plot_history(3)


def test_plot_history_draws_chance_and_starts_accuracy_at_zero():
    fig = viz.plot_history({"lstm": history(0.9), "rnn": history(0.4)}, chance=0.25)
    check_figure(fig)
    score = fig.axes[1]
    chance_lines = [line for line in score.lines if line.get_label().startswith("chance")]
    assert len(chance_lines) == 1
    assert list(chance_lines[0].get_ydata()) == [0.25, 0.25]
    assert score.get_ylim()[0] == 0
    # the legend sits beside the panel, not over the curves
    anchor = score.get_legend().get_bbox_to_anchor().transformed(score.transAxes.inverted())
    assert anchor.x0 > 1
    with pytest.raises(TypeError, match="chance must be a number"):
        viz.plot_history(history(0.9), chance="0.25")
    with pytest.raises(ValueError, match="chance must be a number in"):
        viz.plot_history(history(0.9), chance=4)


def test_plot_accuracy_by_distance():
    fig = viz.plot_accuracy_by_distance(
        {"rnn": ([0, 10, 20], [0.9, 0.5, 0.3]), "lstm": {0: 1.0, 10: 0.95, 20: 0.9}}, chance=0.25
    )
    check_figure(fig)
    assert [line.get_label() for line in fig.axes[0].lines] == ["rnn", "lstm", "chance (0.25)"]
    # the chance label keeps its digits: 1/8 is 0.125, not "0.12"
    eighth = viz.plot_accuracy_by_distance({"rnn": ([0, 10], [0.9, 0.5])}, chance=1 / 8)
    assert eighth.axes[0].lines[-1].get_label() == "chance (0.125)"
    with pytest.raises(ValueError, match="3 distances but 2 accuracies"):
        viz.plot_accuracy_by_distance({"rnn": ([0, 10, 20], [0.9, 0.5])})


def test_plot_accuracy_by_distance_keeps_identical_curves_apart():
    same = {0: 1.0, 10: 1.0, 20: 0.5}
    fig = viz.plot_accuracy_by_distance({"a": same, "b": same, "c": same}, chance=0.25)
    check_figure(fig)
    lines = fig.axes[0].lines[:3]
    styles = [(line.get_marker(), line.get_linestyle()) for line in lines]
    assert len({marker for marker, _ in styles}) == 3, f"markers repeat: {styles}"
    assert len({style for _, style in styles}) == 3, f"line styles repeat: {styles}"
    # Earlier lines lie underneath, larger and thicker, so each shows around the next one...
    sizes = [line.get_markersize() for line in lines]
    widths = [line.get_linewidth() for line in lines]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    # ... and every line is drawn at its true values, with no offset.
    for line in lines:
        assert list(line.get_xdata()) == [0, 10, 20]
        assert list(line.get_ydata()) == [1.0, 1.0, 0.5]
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert legend == ["a", "b", "c", "chance (0.25)"]


def test_plot_grad_norms_log_scale():
    fig = viz.plot_grad_norms({"rnn": 0.5 ** torch.arange(20.0), "lstm": torch.ones(20)})
    check_figure(fig)
    assert fig.axes[0].get_yscale() == "log"
    check_figure(viz.plot_grad_norms(np.linspace(1, 2, 5)))


def test_plot_gates_and_attention():
    torch.manual_seed(0)
    trace = LSTM(3, 4, batch_first=True).gate_trace(torch.randn(2, 6, 3))
    fig = viz.plot_gates(trace, tokens=list("abcdef"), example=1)
    check_figure(fig, legend=False)  # heatmaps: colorbars, no lines
    assert [ax.get_title() for ax in fig.axes if ax.images][:2] == ["input gate i", "forget gate f"]
    weights = torch.softmax(torch.randn(3, 5), dim=-1)
    fig = viz.plot_attention(weights, list("abcde"), list("xyz"))
    check_figure(fig, legend=False)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcde")
    with pytest.raises(ValueError, match="got 4 tokens for 5 positions"):
        viz.plot_attention(weights, list("abcd"))


def test_gate_explorer_redraws_when_the_slider_moves():
    torch.manual_seed(0)
    layer = LSTM(3, 4, batch_first=True)
    explorer = viz.gate_explorer(layer, torch.randn(2, 6, 3), tokens=list("abcdef"))
    assert isinstance(explorer, VBox)
    assert set(explorer.controls) == {"example", "unit", "heatmap", "step"}
    before = explorer.png
    assert before[:4] == b"\x89PNG"
    explorer.controls["step"].value = 4  # what the slider does
    assert explorer.png != before
    marker = [line for line in explorer.figure.axes[0].lines][0]  # the step marker on the heatmap
    assert list(marker.get_xdata()) == [4, 4]
    explorer.update(example=1, heatmap="c", unit=2)
    assert explorer.figure.axes[0].get_title().startswith("cell state c")
    with pytest.raises(ValueError, match="no control named 'time'"):
        explorer.update(time=3)


def test_explorers_carry_their_css_class_and_keep_their_aspect():
    torch.manual_seed(0)
    gates = viz.gate_explorer(GRU(3, 4, batch_first=True).gate_trace(torch.randn(1, 5, 3)))
    attention = viz.attention_explorer(torch.softmax(torch.randn(3, 5), dim=-1))
    for explorer, css_class in (
        (gates, "course-gate-explorer"),
        (attention, "course-attention-explorer"),
    ):
        assert css_class in explorer._dom_classes  # what the browser test looks for
        layout = explorer.image.layout
        # never stretched across the output: its own width, at most 100%, height following
        assert layout.align_self == "flex-start" and layout.height == "auto"
        assert layout.max_width == "100%" and layout.object_fit == "contain"
        assert layout.width is None


def test_gate_explorer_starts_on_the_unit_asked_for():
    torch.manual_seed(0)
    trace = LSTM(3, 4, batch_first=True).gate_trace(torch.randn(1, 6, 3))
    explorer = viz.gate_explorer(trace, unit=2)
    assert explorer.controls["unit"].value == 2
    assert explorer.figure.axes[1].get_title() == "unit 2 over time"
    assert viz.gate_explorer(trace, unit=np.int64(0)).controls["unit"].value == 0
    with pytest.raises(ValueError, match=r"unit must be in 0\.\.3, got 4"):
        viz.gate_explorer(trace, unit=4)
    with pytest.raises(ValueError, match=r"unit must be in 0\.\.3, got -1"):
        viz.gate_explorer(trace, unit=-1)
    for bad in (1.0, True, "2"):
        with pytest.raises(TypeError, match="unit must be an int"):
            viz.gate_explorer(trace, unit=bad)


def test_gate_explorer_labels_the_step_and_highlighted_words_in_long_sequences():
    T = 150  # past 100 steps only every other step gets a label
    tokens = ["the", "dog"] + [f"w{t}" for t in range(2, T)]
    torch.manual_seed(0)
    trace = GRU(3, 4, batch_first=True).gate_trace(torch.randn(1, T, 3))

    def labels(explorer):
        ticks = explorer.figure.axes[1].get_xticklabels()  # the unit's lines, labelled below
        return {t.get_text(): t.get_fontweight() for t in ticks}

    plain = viz.gate_explorer(trace, tokens=tokens)
    assert "the" in labels(plain) and "dog" not in labels(plain), "expected every other label"
    explorer = viz.gate_explorer(trace, tokens=tokens, highlight="dog")
    explorer.update(step=75)
    shown = labels(explorer)
    assert shown["dog"] == "bold" and shown["w75"] == "bold", "the step and 'dog' must be named"
    assert shown["w74"] == "normal" and "w73" not in shown
    assert viz.gate_explorer(trace, tokens=tokens, highlight=["dog", "w3"]) is not None
    with pytest.raises(ValueError, match=r"highlight words \['cat'\] are not among the tokens"):
        viz.gate_explorer(trace, tokens=tokens, highlight=("dog", "cat"))
    with pytest.raises(ValueError, match="highlight needs token labels"):
        viz.gate_explorer(trace, highlight="dog")
    with pytest.raises(TypeError, match="highlight must be a word or a list of words"):
        viz.gate_explorer(trace, tokens=tokens, highlight=[1])


def test_attention_explorer_names_the_row_and_the_most_attended_source():
    S = 120
    weights = torch.full((2, S), 0.1 / S)
    weights[1, 41] = 0.9  # output step 1 looks at source position 41: odd, so thinned away
    explorer = viz.attention_explorer(weights, [f"s{s}" for s in range(S)], ["x", "y"])
    explorer.update(step=1)
    ax_map, ax_row = explorer.figure.axes[:2]
    row_labels = {t.get_text(): t.get_fontweight() for t in ax_row.get_xticklabels()}
    assert row_labels["s41"] == "bold" and "s43" not in row_labels
    assert {t.get_text(): t.get_fontweight() for t in ax_map.get_yticklabels()}["y"] == "bold"


def test_gate_explorer_for_a_gru_trace_and_a_model():
    from course_lib.models import ModelConfig, SequenceClassifier

    torch.manual_seed(0)
    trace = GRU(3, 4, batch_first=True).gate_trace(torch.randn(1, 5, 3))
    explorer = viz.gate_explorer(trace)
    assert "example" not in explorer.controls
    assert [v for _, v in explorer.controls["heatmap"].options] == ["r", "z", "n", "h"]
    model = SequenceClassifier(6, 2, ModelConfig(kind="lstm", hidden_size=4, embedding_size=3))
    vocab = ["<pad>", "the", "dog", "ate", "my", "?"]
    explorer = viz.gate_explorer(model, torch.tensor([[1, 2, 3, 4, 5]]), vocab)
    labels = [t.get_text() for t in explorer.figure.axes[1].get_xticklabels()]
    assert labels == ["the", "dog", "ate", "my", "?"]


def test_attention_explorer_redraws_and_falls_back_to_an_image():
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(2, 3, 5), dim=-1)
    explorer = viz.attention_explorer(weights, list("abcde"), list("xyz"))
    before = explorer.png
    explorer.update(step=2)
    assert explorer.png != before
    row = explorer.figure.axes[1].patches  # the bars of the chosen output step
    assert np.allclose([bar.get_height() for bar in row], weights[0, 2].numpy())
    explorer.update(example=1)
    assert np.allclose(
        [bar.get_height() for bar in explorer.figure.axes[1].patches], weights[1, 2].numpy()
    )
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == explorer.png
    with pytest.raises(
        ValueError, match="source_tokens has 4 tokens but the weights have 5 positions"
    ):
        viz.attention_explorer(weights, list("abcd"))


def _diagram_text(explorer) -> str:
    assert explorer.diagram.format == "svg+xml"
    return bytes(explorer.diagram.value).decode()


def _written(svg: str, value: float) -> bool:
    """Whether `value` is written on the diagram, as the cells print it (after ' = ')."""
    return f"= {value:.2f}<" in svg


def test_gate_explorer_draws_the_cell_with_the_current_step_on_it():
    torch.manual_seed(0)
    layer = LSTM(3, 4, batch_first=True)
    inputs = torch.randn(2, 6, 3)
    explorer = viz.gate_explorer(layer, inputs, unit=1)
    trace = {k: v.detach().numpy() for k, v in layer.gate_trace(inputs).items()}  # (B, T, H)
    # the diagram sits between the controls and the plot
    assert explorer.children.index(explorer.diagram) == len(explorer.children) - 2
    assert "course-cell-diagram" in explorer.diagram._dom_classes
    first = _diagram_text(explorer)
    assert first.startswith("<svg") and "The LSTM cell" in first
    for gate in "ifgo":
        assert _written(first, trace[gate][0, 0, 1]), f"{gate} at step 0 is not on the diagram"
    assert _written(first, 0.0)  # c_{t-1} before the first step

    explorer.update(step=4, example=1, unit=2)
    moved = _diagram_text(explorer)
    assert moved != first
    for gate in "ifgoc":
        assert _written(moved, trace[gate][1, 4, 2]), f"{gate} at step 4 is not on the diagram"
    assert _written(moved, trace["c"][1, 3, 2])  # c_{t-1} is the previous step's c
    explorer.controls["step"].value = 5  # the slider alone redraws it too
    assert _diagram_text(explorer) != moved


def test_gate_explorer_draws_a_gru_cell_and_no_cell_for_a_tanh_rnn():
    torch.manual_seed(0)
    layer = GRU(3, 4, batch_first=True)
    trace = layer.gate_trace(torch.randn(1, 5, 3))
    explorer = viz.gate_explorer(trace, unit=0)
    svg = _diagram_text(explorer)
    assert "The GRU cell" in svg
    for gate in "rzn":
        assert _written(svg, trace[gate][0, 0, 0].item())
    rnn_trace = {"h": torch.tanh(torch.randn(1, 5, 4))}
    assert viz.gate_explorer(rnn_trace).diagram is None


def test_plots_and_diagrams_share_one_palette():
    from course_lib.diagrams.svg import PALETTE

    for name, colour in viz.GATE_COLORS.items():
        assert colour == PALETTE[name], f"gate {name} is drawn in two colours"
    assert len(set(viz.GATE_COLORS.values())) == len(viz.GATE_COLORS)

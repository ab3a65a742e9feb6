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


def test_plot_accuracy_by_distance():
    fig = viz.plot_accuracy_by_distance(
        {"rnn": ([0, 10, 20], [0.9, 0.5, 0.3]), "lstm": {0: 1.0, 10: 0.95, 20: 0.9}}, chance=0.25
    )
    check_figure(fig)
    assert [line.get_label() for line in fig.axes[0].lines] == ["rnn", "lstm", "chance (0.25)"]
    with pytest.raises(ValueError, match="3 distances but 2 accuracies"):
        viz.plot_accuracy_by_distance({"rnn": ([0, 10, 20], [0.9, 0.5])})


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

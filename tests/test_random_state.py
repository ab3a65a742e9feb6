"""Library calls never touch the global random state unless asked to seed.

A seeded lecture draws its data, its weights and its batches from torch's global generator (and
NumPy's and Python's). A plotting helper that drew one random number in between would shift
every result after it, so these tools must leave all three exactly as they found them:
``layer.cell()``, ``layer.gate_trace``, ``viz.gate_trace`` via the gate explorer,
``viz.attention_explorer`` and ``training.hidden_state_gradient_norms``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_lib import layers, models, tasks, training, viz
from course_lib.models import ModelConfig

LAYERS = [layers.RNN, layers.LSTM, layers.GRU, layers.PeepholeLSTM]


class RandomStateUnchanged:
    """Snapshot torch's, NumPy's and Python's global random state; compare on exit."""

    def __enter__(self):
        self.states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        return self

    def __exit__(self, *exc_info):
        torch_state, numpy_state, python_state = self.states
        assert torch.equal(torch.get_rng_state(), torch_state), "torch's random state moved"
        after = np.random.get_state()
        assert all(np.array_equal(a, b) for a, b in zip(after, numpy_state)), "NumPy's moved"
        assert random.getstate() == python_state, "Python's random state moved"
        return False


def test_the_snapshot_notices_a_draw():
    """The check itself can fail: one torch.rand inside it is caught."""
    with pytest.raises(AssertionError, match="torch's random state moved"):
        with RandomStateUnchanged():
            torch.rand(1)


@pytest.mark.parametrize("layer_class", LAYERS)
def test_cell_and_gate_trace(layer_class):
    torch.manual_seed(0)
    layer = layer_class(3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3)
    with RandomStateUnchanged():
        layer.cell(layer=1, reverse=True)
        layer.gate_trace(x, layer=1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gate_explorer(kind):
    torch.manual_seed(0)
    data = tasks.spaghetti(3, 2, seed=0)
    model = models.model_for(data, ModelConfig(kind=kind, hidden_size=4, embedding_size=3))
    with RandomStateUnchanged():
        viz.gate_explorer(model, data.inputs, data.vocab)
        viz.gate_explorer(model.rnn, model.embedding(data.inputs).detach())


def test_attention_explorer():
    weights = torch.softmax(torch.randn(2, 3, 4), dim=-1)
    with RandomStateUnchanged():
        viz.attention_explorer(weights)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "peephole"])
def test_hidden_state_gradient_norms(kind):
    torch.manual_seed(0)
    data = tasks.spaghetti(4, 2, seed=0)
    model = models.model_for(data, ModelConfig(kind=kind, hidden_size=4, embedding_size=3))
    with RandomStateUnchanged():
        training.hidden_state_gradient_norms(model, data)


def test_a_seeded_run_is_the_same_with_or_without_a_gate_trace_in_between():
    """What a lecture sees: build, trace, build again gives what build, build gives."""
    runs = []
    for trace in (False, True):
        torch.manual_seed(1)
        first = layers.LSTM(3, 4)
        if trace:
            first.gate_trace(torch.zeros(2, 1, 3))
        runs.append(layers.LSTM(3, 4).weight_ih_l0.detach().clone())
    assert torch.equal(runs[0], runs[1])

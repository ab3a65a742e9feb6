"""The task models and the training loop: shapes, metrics on hand-made predictions, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib import device as device_module
from course_lib import layers, models, tasks, training
from course_lib.device import get_device
from course_lib.models import ModelConfig
from course_lib.tasks import IGNORE_INDEX, TaskData


@pytest.fixture(autouse=True)
def cpu_one_thread():
    """Tiny models on the CPU with one thread: several threads only add waiting (see device.py)."""
    previous_device, previous_threads = get_device(), torch.get_num_threads()
    get_device("cpu")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous_threads)
    get_device(previous_device)


class FixedOutputs(nn.Module):
    """A stand-in model that returns prepared outputs for the examples it is given, in order."""

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.outputs = outputs
        self.seen = 0
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, inputs, lengths=None):
        out = self.outputs[self.seen : self.seen + inputs.shape[0]]
        self.seen += inputs.shape[0]
        if out.dim() == 3:
            out = out[:, : inputs.shape[1]]
        return out


def one_hot_logits(classes: list, num_classes: int) -> torch.Tensor:
    return nn.functional.one_hot(torch.tensor(classes), num_classes).float()


# -- models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "peephole"])
def test_registry_picks_course_lib_layers(kind):
    model = models.model_for(tasks.spaghetti(4, 3), ModelConfig(kind=kind, hidden_size=8))
    expected = {
        "rnn": layers.RNN,
        "lstm": layers.LSTM,
        "gru": layers.GRU,
        "peephole": layers.PeepholeLSTM,
    }
    assert type(model.rnn) is expected[kind]


@pytest.mark.parametrize("kind", ["lstm", "peephole"])
def test_forget_bias_reaches_the_layer(kind):
    config = ModelConfig(kind=kind, hidden_size=8, forget_bias=3.0)
    model = models.model_for(tasks.spaghetti(4, 3), config)
    H = 8
    b = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    assert torch.allclose(b[H : 2 * H], torch.full((H,), 3.0))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_output_shapes(bidirectional, num_layers):
    config = ModelConfig(
        kind="gru", hidden_size=8, num_layers=num_layers, bidirectional=bidirectional
    )
    data = tasks.spaghetti(5, (0, 6), seed=0)
    assert models.model_for(data, config)(data.inputs, lengths=data.lengths).shape == (5, 4)
    tags = tasks.future_context(5, (4, 9), 2, seed=0)
    tagger = models.model_for(tags, config)
    assert isinstance(tagger, models.SequenceTagger)
    assert tagger(tags.inputs, lengths=tags.lengths).shape == (5, 9, tags.num_classes)
    adding = tasks.adding(5, 10, seed=0)
    assert models.model_for(adding, config)(adding.inputs).shape == (5,)


def test_classifier_reads_last_layer_both_directions():
    torch.manual_seed(0)
    config = ModelConfig(kind="lstm", hidden_size=4, num_layers=2, bidirectional=True)
    model = models.SequenceClassifier(10, 3, config)
    tokens = torch.randint(0, 10, (2, 6))
    _, (h_n, _) = model.rnn(model.embedding(tokens))
    expected = model.head(torch.cat([h_n[2], h_n[3]], dim=-1))  # layer 1, forward and reverse
    torch.testing.assert_close(model(tokens), expected)


def test_padding_does_not_change_the_answer():
    torch.manual_seed(0)
    model = models.SequenceClassifier(10, 3, ModelConfig(kind="rnn", hidden_size=4))
    tokens = torch.randint(1, 10, (1, 5))
    padded = torch.cat([tokens, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded, lengths=torch.tensor([5])), model(tokens))


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: ModelConfig(kind="transformer"), ValueError, "kind"),
        (lambda: ModelConfig(hidden_size=0), ValueError, "hidden_size"),
        (lambda: ModelConfig(kind="gru", forget_bias=1.0), ValueError, "forget_bias"),
        (lambda: ModelConfig(bidirectional=1), TypeError, "bidirectional"),
        (lambda: ModelConfig(hidden_size=8.0), TypeError, "hidden_size"),
        (lambda: ModelConfig(forget_bias="3"), TypeError, "forget_bias"),
        (lambda: ModelConfig(dropout=1.5), ValueError, "dropout"),
        (lambda: models.SequenceClassifier(0, 3, ModelConfig()), ValueError, "vocab_size"),
        (lambda: models.make_layer("lstm", 3), TypeError, "config"),
        (lambda: models.model_for(torch.zeros(3), ModelConfig()), TypeError, "data"),
    ],
)
def test_bad_config(make, error, name):
    with pytest.raises(error, match=name):
        make()


def test_bad_model_inputs():
    model = models.SequenceClassifier(10, 3, ModelConfig(hidden_size=4))
    with pytest.raises(TypeError, match="tokens"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="tokens"):
        model(torch.full((2, 5), 10))
    with pytest.raises(ValueError, match="tokens"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="x must"):
        models.Regressor(2, ModelConfig(hidden_size=4))(torch.zeros(2, 5, 3))


# -- training -------------------------------------------------------------------------------------


def test_fit_reduces_loss_and_is_reproducible():
    data = tasks.spaghetti(256, 0, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = models.model_for(data, ModelConfig(kind="gru", hidden_size=16))
        history = training.fit(
            model, data, steps=40, batch_size=32, lr=3e-2, seed=0, valid=data[:64], progress=False
        )
        runs.append(history)
    history = runs[0]
    assert len(history.loss) == 40 and history.eval_steps[-1] == 40
    assert sum(history.loss[-5:]) / 5 < 0.5 * sum(history.loss[:5]) / 5
    assert history.final > 0.5 and history.best >= history.final
    assert runs[0].loss == runs[1].loss, "same seeds must give the same run"


def test_fit_epochs_count_and_regression():
    data = tasks.adding(64, 8, seed=0)
    model = models.model_for(data, ModelConfig(kind="lstm", hidden_size=8))
    history = training.fit(model, data, epochs=2, batch_size=16, progress=False)
    assert len(history.loss) == 8 and history.metric == "mse"


def test_evaluate_accuracy_on_hand_made_predictions():
    inputs, targets = torch.zeros(4, 3, dtype=torch.long), torch.tensor([0, 1, 2, 1])
    data = TaskData(inputs, targets, None, 1 / 3, "accuracy", ("<pad>",), False, ("a", "b", "c"))
    outputs = one_hot_logits([0, 1, 0, 0], 3)  # two of four right
    assert training.evaluate(FixedOutputs(outputs), data, batch_size=3) == pytest.approx(0.5)


def test_evaluate_per_step_skips_ignored_steps():
    targets = torch.tensor([[0, 1, IGNORE_INDEX], [1, IGNORE_INDEX, IGNORE_INDEX]])
    inputs, lengths = torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 1])
    data = TaskData(inputs, targets, lengths, 0.5, "accuracy", ("<pad>", "x"), True, ("a", "b"))
    predicted = torch.tensor([[0, 0, 1], [1, 0, 0]])  # real steps: right, wrong, right
    outputs = nn.functional.one_hot(predicted, 2).float()
    assert training.evaluate(FixedOutputs(outputs), data) == pytest.approx(2 / 3)


def test_evaluate_mse():
    data = TaskData(
        torch.zeros(3, 4, 2), torch.tensor([1.0, 2.0, 0.0]), None, 1 / 6, "mse", None, False
    )
    outputs = torch.tensor([1.0, 1.0, 1.0])
    assert training.evaluate(FixedOutputs(outputs), data) == pytest.approx(2 / 3)


def test_accuracy_by_distance():
    model = models.model_for(tasks.spaghetti(4, 0), ModelConfig(kind="rnn", hidden_size=4))
    result = training.accuracy_by_distance(model, lambda d: tasks.spaghetti(20, d, seed=1), [0, 3])
    assert list(result) == [0, 3] and all(0 <= v <= 1 for v in result.values())
    with pytest.raises(TypeError, match="make_data"):
        training.accuracy_by_distance(model, [0, 3], [0])


def test_history_without_validation():
    with pytest.raises(ValueError, match="valid"):
        _ = training.History(metric="accuracy").best


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        (dict(steps=5, epochs=1), ValueError, "steps or epochs"),
        (dict(), ValueError, "steps or epochs"),
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=5, batch_size=0), ValueError, "batch_size"),
        (dict(steps=5, lr=-1.0), ValueError, "lr"),
        (dict(steps=5, lr="0.01"), TypeError, "lr"),
        (dict(steps=5, batch_size=8.0), TypeError, "batch_size"),
        (dict(steps=5, clip=0), ValueError, "clip"),
        (dict(steps=5, seed=-3), ValueError, "seed"),
        (dict(steps=5, valid="data"), TypeError, "valid"),
    ],
)
def test_fit_bad_arguments(kwargs, error, name):
    data = tasks.spaghetti(8, 0)
    model = models.model_for(data, ModelConfig(kind="rnn", hidden_size=4))
    with pytest.raises(error, match=name):
        training.fit(model, data, progress=False, **kwargs)


def test_fit_rejects_mismatched_model():
    data = tasks.spaghetti(8, 0)
    tagger = models.SequenceTagger(data.vocab_size, 4, ModelConfig(kind="rnn", hidden_size=4))
    with pytest.raises(ValueError, match="output must have shape"):
        training.fit(tagger, data, steps=1, progress=False)
    with pytest.raises(TypeError, match="train"):
        training.fit(tagger, data.inputs, steps=1, progress=False)


# -- gradient diagnostics -------------------------------------------------------------------------

TORCH_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


@pytest.mark.parametrize("kind", sorted(TORCH_CELLS))
def test_hidden_state_gradient_norms_match_a_retain_grad_loop(kind):
    data = tasks.spaghetti(6, 4, seed=0)  # 6 questions of 15 tokens
    torch.manual_seed(0)
    model = models.model_for(data, ModelConfig(kind=kind, hidden_size=5, embedding_size=3))

    # Reference: torch.nn's cell with the layer's weights, stepped by hand; every h_t keeps its
    # gradient (retain_grad), then one backward pass from the same summed cross-entropy.
    cell = TORCH_CELLS[kind](3, 5)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    cell.load_state_dict({name: getattr(model.rnn, f"{name}_l0") for name in names})
    x = model.embedding(data.inputs)  # (B, T, E)
    state, hs = None, []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state  # (B, H)
        h.retain_grad()
        hs.append(h)
    logits = model.head(hs[-1])  # (B, C)
    torch.testing.assert_close(logits, model(data.inputs))  # the same answers as the model's
    nn.functional.cross_entropy(logits, data.targets, reduction="sum").backward()
    expected = torch.stack([h.grad.norm(dim=-1).mean() for h in hs])  # (T,)

    model.zero_grad(set_to_none=True)
    norms = training.hidden_state_gradient_norms(model, data)
    assert norms.shape == (data.inputs.shape[1],)
    torch.testing.assert_close(norms, expected)
    assert all(p.grad is None for p in model.parameters()), "parameters' .grad were touched"
    with torch.no_grad():  # the gradient is measured even where autograd is switched off
        torch.testing.assert_close(training.hidden_state_gradient_norms(model, data), expected)


def test_hidden_state_gradient_norms_bad_inputs():
    data = tasks.spaghetti(4, 2, seed=0)
    two_way = models.model_for(data, ModelConfig(kind="rnn", hidden_size=4, bidirectional=True))
    with pytest.raises(ValueError, match="one layer read in one direction"):
        training.hidden_state_gradient_norms(two_way, data)
    regressor = models.model_for(tasks.adding(4, 5), ModelConfig(kind="rnn", hidden_size=4))
    with pytest.raises(TypeError, match="SequenceClassifier, got Regressor"):
        training.hidden_state_gradient_norms(regressor, data)
    model = models.model_for(data, ModelConfig(kind="rnn", hidden_size=4))
    with pytest.raises(ValueError, match="sequences of one length"):
        training.hidden_state_gradient_norms(model, tasks.spaghetti(8, (0, 5), seed=0))
    with pytest.raises(TypeError, match="data must be a TaskData"):
        training.hidden_state_gradient_norms(model, data.inputs)


# -- devices --------------------------------------------------------------------------------------


def test_fit_device_applies_to_that_call_only(monkeypatch):
    monkeypatch.setattr(device_module, "_chosen", None)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    data = tasks.spaghetti(8, 0)
    model = models.model_for(data, ModelConfig(kind="rnn", hidden_size=4))
    training.fit(model, data, steps=1, device="cpu", progress=False)
    assert device_module._chosen is None, "fit(device=...) pinned the session's device"
    with pytest.raises(ValueError, match="device must be one of"):
        training.fit(model, data, steps=1, device="tpu", progress=False)
    with pytest.raises(TypeError, match="device must be a str or torch.device"):
        training.fit(model, data, steps=1, device=0, progress=False)


def test_lecture_policy_is_the_cpu_unless_asked(monkeypatch):
    monkeypatch.setattr(device_module, "_chosen", None)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert get_device() == torch.device("cpu")  # even where a GPU exists
    monkeypatch.setattr(device_module, "_chosen", None)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(device_module, "_chosen", None)
    monkeypatch.setenv("COURSE_DEVICE", "quantum")
    with pytest.raises(ValueError, match="COURSE_DEVICE must be one of"):
        get_device()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_learner_can_ask_for_the_gpu(monkeypatch):
    monkeypatch.setattr(device_module, "_chosen", None)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    assert get_device().type == "cuda"

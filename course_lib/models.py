"""Small models that put one recurrent layer from :mod:`course_lib.layers` to work on a task.

* :class:`SequenceClassifier` — token ids → embedding → recurrent layer → one answer per sequence,
  read from the final hidden state ``h_n`` (spaghetti, timing).
* :class:`SequenceTagger` — the same, with one answer per time step (future context).
* :class:`Regressor` — float features → recurrent layer → one number per sequence (adding).

The recurrent layer is picked by name through :data:`LAYERS` (``"rnn"``, ``"lstm"``, ``"gru"``,
``"peephole"``), so one experiment can loop over architectures and change nothing else. Every
model takes its architecture as a frozen :class:`ModelConfig`; :func:`model_for` builds the right
model for a :class:`~course_lib.tasks.TaskData`.

Shapes: B batch, T time, I input features, E embedding, H hidden, D directions, L layers,
V vocabulary, C classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib import layers
from course_lib._validate import (
    check_bool,
    check_choice,
    check_instance,
    check_number,
    check_positive_int,
    check_tensor,
    check_token_ids,
)
from course_lib.tasks import TaskData

# The recurrent layer behind each `kind`. All four share torch.nn's interface.
LAYERS: dict[str, Callable[..., layers.RecurrentLayer]] = {
    "rnn": layers.RNN,
    "lstm": layers.LSTM,
    "gru": layers.GRU,
    "peephole": layers.PeepholeLSTM,
}
LSTM_KINDS = ("lstm", "peephole")  # the kinds with a forget gate (and a cell state)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a model; the task decides V, C and I."""

    kind: str = "lstm"  # which recurrent layer: "rnn", "lstm", "gru" or "peephole"
    hidden_size: int = 64  # H: the size of the memory the model keeps between steps
    num_layers: int = 1  # L: stacked layers, each reading the outputs of the one below
    bidirectional: bool = False  # D = 2: also read right to left, then concatenate
    forget_bias: float | None = None  # LSTMs only: start f at sigmoid(b); None = torch.nn's init
    # E: the vector each token id becomes (token tasks only). Enough for the course's small
    # vocabularies; much wider ones (64) saturate the tanh RNN and it stops learning at all
    # (docs/EXPERIMENTS.md).
    embedding_size: int = 16
    dropout: float = 0.0  # between stacked layers (torch.nn's meaning); needs num_layers > 1

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, tuple(LAYERS))
        for name in ("hidden_size", "num_layers", "embedding_size"):
            check_positive_int(name, getattr(self, name))
        check_bool("bidirectional", self.bidirectional)
        if self.forget_bias is not None:
            if self.kind not in LSTM_KINDS:
                raise ValueError(
                    f"forget_bias applies to kinds {LSTM_KINDS} (they have a forget gate), "
                    f"got kind={self.kind!r}; leave forget_bias=None"
                )
            check_number("forget_bias", self.forget_bias)
        check_number("dropout", self.dropout, 0.0, 1.0, high_open=True)

    @property
    def directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1


def make_layer(config: ModelConfig, input_size: int) -> layers.RecurrentLayer:
    """The batch-first recurrent layer of ``config``, reading ``input_size`` features per step."""
    check_instance("config", config, ModelConfig, "a ModelConfig")
    layer_class = LAYERS[config.kind]
    if layer_class in (layers.LSTM, layers.PeepholeLSTM):
        return layer_class(
            input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout,
            bidirectional=config.bidirectional,
            forget_bias=config.forget_bias,
        )
    return layer_class(
        input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        batch_first=True,
        dropout=config.dropout,
        bidirectional=config.bidirectional,
    )


def last_layer_state(h_n: Tensor, config: ModelConfig) -> Tensor:
    """The last layer's final hidden state, both directions side by side: (D*L, B, H) → (B, D*H)."""
    D = config.directions
    last = h_n[-D:]  # (D, B, H): h_n is ordered layer by layer, directions inside a layer
    return torch.cat(last.unbind(0), dim=-1)  # (B, D*H)


class _TokenModel(nn.Module):
    """Embedding and recurrent layer, shared by the classifier and the tagger."""

    def __init__(self, vocab_size: int, num_classes: int, config: ModelConfig) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("num_classes", num_classes)
        self.config = config
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.rnn = make_layer(config, config.embedding_size)
        self.head = nn.Linear(config.directions * config.hidden_size, num_classes)

    def run(self, tokens: Tensor, lengths: object) -> tuple[Tensor, Tensor]:
        """The layer's ``output`` (B, T, D*H) and ``h_n`` (D*L, B, H)."""
        x = self.embedding(check_token_ids("tokens", tokens, self.vocab_size))  # (B, T, E)
        output, hidden = self.rnn(x, lengths=lengths)  # (B, T, D*H)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTMs return (h_n, c_n)
        return output, h_n


class SequenceClassifier(_TokenModel):
    """One answer per sequence: logits = W · h_T + b, from the last layer's final state.

    With ``bidirectional=True`` the final state is [forward h at the last real step;
    backward h at the first step], the two ends of the reading. Padding is skipped by passing
    ``lengths`` to the layer, so h_T is the state after each sequence's own last token.
    """

    def forward(self, tokens: Tensor, lengths: object = None) -> Tensor:
        """``tokens`` (B, T) int64 → logits (B, C)."""
        _, h_n = self.run(tokens, lengths)
        return self.head(last_layer_state(h_n, self.config))  # (B, C)


class SequenceTagger(_TokenModel):
    """One answer per time step: logits_t = W · h_t + b (h_t holds both directions if D = 2)."""

    def forward(self, tokens: Tensor, lengths: object = None) -> Tensor:
        """``tokens`` (B, T) int64 → logits (B, T, C)."""
        output, _ = self.run(tokens, lengths)  # (B, T, D*H)
        return self.head(output)  # (B, T, C)


class Regressor(nn.Module):
    """One number per sequence from float features: y = w · h_T + b."""

    def __init__(self, input_size: int, config: ModelConfig) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.config = config
        self.rnn = make_layer(config, input_size)
        self.head = nn.Linear(config.directions * config.hidden_size, 1)

    def forward(self, x: Tensor, lengths: object = None) -> Tensor:
        """``x`` (B, T, I) float → predictions (B,)."""
        x = check_tensor("x", x)
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        _, hidden = self.rnn(x, lengths=lengths)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.head(last_layer_state(h_n, self.config)).squeeze(-1)  # (B,)


def model_for(data: TaskData, config: ModelConfig) -> nn.Module:
    """The model that fits ``data``: a regressor, a tagger or a classifier of the right sizes."""
    check_instance("data", data, TaskData, "a TaskData")
    if data.metric == "mse":
        return Regressor(data.inputs.shape[-1], config)
    if data.vocab is None or data.classes is None:
        raise ValueError("model_for needs token inputs and named classes for a classification task")
    vocab_size, num_classes = len(data.vocab), len(data.classes)  # V and C
    if data.per_step:
        if data.targets.shape[1] != data.inputs.shape[1]:
            raise ValueError(
                "targets and inputs have different lengths (a sequence-to-sequence task such as "
                "copy_memory); use course_lib.seq2seq.EncoderDecoder"
            )
        return SequenceTagger(vocab_size, num_classes, config)
    return SequenceClassifier(vocab_size, num_classes, config)

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

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib import layers
from course_lib._validate import check_positive_int, check_tensor, check_token_ids
from course_lib.tasks import TaskData

# The recurrent layer behind each `kind`. All four share torch.nn's interface.
LAYERS: dict[str, type[nn.Module]] = {
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
        if self.kind not in LAYERS:
            raise ValueError(f"kind must be one of {tuple(LAYERS)}, got {self.kind!r}")
        for name in ("hidden_size", "num_layers", "embedding_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.bidirectional, bool):
            raise TypeError(
                f"bidirectional must be a bool, got {type(self.bidirectional).__name__}"
            )
        if self.forget_bias is not None:
            if self.kind not in LSTM_KINDS:
                raise ValueError(
                    f"forget_bias applies to kinds {LSTM_KINDS} (they have a forget gate), "
                    f"got kind={self.kind!r}; leave forget_bias=None"
                )
            if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, (int, float)):
                raise TypeError(f"forget_bias must be a number or None, got {self.forget_bias!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")

    @property
    def directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1


def make_layer(config: ModelConfig, input_size: int) -> nn.Module:
    """The batch-first recurrent layer of ``config``, reading ``input_size`` features per step."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    options = dict(
        num_layers=config.num_layers,
        batch_first=True,
        dropout=config.dropout,
        bidirectional=config.bidirectional,
    )
    if config.kind in LSTM_KINDS:
        options["forget_bias"] = config.forget_bias
    return LAYERS[config.kind](input_size, config.hidden_size, **options)


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
        check_tensor("x", x)
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"x must have shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        _, hidden = self.rnn(x, lengths=lengths)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.head(last_layer_state(h_n, self.config)).squeeze(-1)  # (B,)


def model_for(data: TaskData, config: ModelConfig) -> nn.Module:
    """The model that fits ``data``: a regressor, a tagger or a classifier of the right sizes."""
    if not isinstance(data, TaskData):
        raise TypeError(f"data must be a TaskData, got {type(data).__name__}")
    if data.metric == "mse":
        return Regressor(data.inputs.shape[-1], config)
    if data.vocab is None or data.classes is None:
        raise ValueError("model_for needs token inputs and named classes for a classification task")
    if data.per_step:
        if data.targets.shape[1] != data.inputs.shape[1]:
            raise ValueError(
                "targets and inputs have different lengths (a sequence-to-sequence task such as "
                "copy_memory); use course_lib.seq2seq.EncoderDecoder"
            )
        return SequenceTagger(data.vocab_size, data.num_classes, config)
    return SequenceClassifier(data.vocab_size, data.num_classes, config)

"""One small training loop for every model of the course, and the matching evaluation.

:func:`fit` trains with Adam on random mini-batches of a :class:`~course_lib.tasks.TaskData`,
clipping the gradient norm (Pascanu, Mikolov & Bengio 2013: one exploding step can undo a whole
run), and returns a :class:`History`. :func:`evaluate` scores a model with the task's own
metric: accuracy (per real step when the task is per-step) or mean squared error.
:func:`accuracy_by_distance` scores one model at several distances, for the course's recurring
chart of accuracy against distance. :func:`hidden_state_gradient_norms` measures how much of the
loss's gradient reaches each step, the vanishing gradient of lectures 01 and 02.

The model is called as ``model(inputs, lengths=lengths)`` and returns logits (B, C), per-step
logits (B, T, C), or predictions (B,) for regression. Each batch is cut to its longest real
sequence, so short sequences in a mixed batch cost no padded steps.

Shapes: B batch, T time, C classes, H hidden units.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from course_lib._validate import check_instance, check_int, check_number, check_positive_int
from course_lib.device import as_device, get_device
from course_lib.models import SequenceClassifier
from course_lib.tasks import IGNORE_INDEX, TaskData


@dataclass
class History:
    """What happened during :func:`fit`."""

    metric: str  # "accuracy" or "mse", the task's metric
    loss: list[float] = field(default_factory=list)  # training loss at every step
    eval_steps: list[int] = field(default_factory=list)  # the steps after which we evaluated
    scores: list[float] = field(default_factory=list)  # validation metric at those steps
    seconds: float = 0.0  # wall-clock time of the whole fit

    @property
    def best(self) -> float:
        """The best validation score: highest accuracy or lowest MSE."""
        if not self.scores:
            raise ValueError("no validation scores: pass valid= to fit")
        return max(self.scores) if self.metric == "accuracy" else min(self.scores)

    @property
    def final(self) -> float:
        """The validation score after the last step."""
        if not self.scores:
            raise ValueError("no validation scores: pass valid= to fit")
        return self.scores[-1]


def _check_data(name: str, data: object) -> TaskData:
    check_instance(name, data, TaskData, "a TaskData")
    assert isinstance(data, TaskData)  # for the type checker
    return data


def _batch(
    data: TaskData, index: Tensor, device: torch.device
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Inputs, targets and lengths of the examples ``index``, cut to their longest sequence."""
    inputs, targets = data.inputs[index], data.targets[index]
    lengths = None
    if data.lengths is not None:
        lengths = data.lengths[index]
        T = int(lengths.max())
        inputs = inputs[:, :T]
        if data.per_step and targets.shape[1] == data.inputs.shape[1]:
            targets = targets[:, :T]  # per-step targets follow the inputs' time axis
    return inputs.to(device), targets.to(device), lengths


def _outputs(model: nn.Module, inputs: Tensor, targets: Tensor, lengths: Tensor | None) -> Tensor:
    """Run the model and check that its outputs fit the targets."""
    outputs = model(inputs, lengths=lengths)
    classification = not targets.is_floating_point()
    expected = (*targets.shape, "C") if classification else tuple(targets.shape)
    fits = outputs.shape[:-1] == targets.shape if classification else outputs.shape == targets.shape
    if not fits:
        raise ValueError(
            f"the model's output must have shape {expected} for these targets, "
            f"got {tuple(outputs.shape)}"
        )
    return outputs


def loss_fn(outputs: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy for class targets (steps holding IGNORE_INDEX skipped), MSE for floats."""
    if targets.is_floating_point():
        return F.mse_loss(outputs, targets)
    return F.cross_entropy(outputs.flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX)


def fit(
    model: nn.Module,
    train: TaskData,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-2,
    clip: float | None = 1.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    valid: TaskData | None = None,
    eval_every: int | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train`` with Adam; return the :class:`History`.

    Give either ``steps`` (optimizer updates) or ``epochs`` (passes over ``train``). ``seed``
    fixes the order of the mini-batches (the model's initial weights are fixed where it is
    built: seed before building it, see :func:`course_lib.device.seed_everything`). With
    ``valid``, the model is scored every ``eval_every`` steps (default: 10 times per run) and
    after the last one. ``clip`` is the maximum gradient norm; None turns clipping off.
    ``device`` trains on that device in this call only (default:
    :func:`~course_lib.device.get_device`); the model stays there afterwards.

    The progress bar (``tqdm.auto``: a widget in JupyterLab, text in a terminal) disappears when
    training ends (``leave=False``) and refreshes at most twice a second, so an executed notebook
    keeps no wall of progress lines; ``progress=False`` or the environment variable
    ``TQDM_DISABLE=1`` hides it.
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    _check_data("train", train)
    if valid is not None:
        _check_data("valid", valid)
    if (steps is None) == (epochs is None):
        raise ValueError(
            f"give exactly one of steps or epochs, got steps={steps!r}, epochs={epochs!r}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    batches_per_epoch = math.ceil(len(train) / batch_size)
    if steps is not None:
        total = check_positive_int("steps", steps)
    else:
        total = check_positive_int("epochs", epochs) * batches_per_epoch
    check_number("lr", lr, 0, None, low_open=True)
    if clip is not None:
        check_number("clip", clip, 0, None, low_open=True)
    if eval_every is None:
        eval_every = max(1, total // 10)
    else:
        eval_every = check_positive_int("eval_every", eval_every)
    check_int("seed", seed, minimum=0)

    # device= moves the model for this call only; the session's device stays what it was.
    device = as_device(device) if device is not None else get_device()
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)  # the batch order, independent of the model
    history = History(metric=train.metric)
    start = time.perf_counter()

    order = torch.empty(0, dtype=torch.long)
    # TQDM_DISABLE=1 (set by `make execute`) hides the bar too: tqdm.auto's notebook bar ignores it.
    hidden = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    bar = tqdm(total=total, leave=False, mininterval=0.5, desc="training", disable=hidden)
    for step in range(1, total + 1):
        # 1. The next mini-batch: walk through a fresh random permutation every epoch.
        if len(order) == 0:
            order = torch.randperm(len(train), generator=generator)
        index, order = order[:batch_size], order[batch_size:]
        inputs, targets, lengths = _batch(train, index, device)

        # 2. Forward, backward, clip, update.
        model.train()
        loss = loss_fn(_outputs(model, inputs, targets, lengths), targets)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        history.loss.append(loss.item())
        bar.update()

        # 3. Now and then, score the model on the validation set.
        if valid is not None and (step % eval_every == 0 or step == total):
            history.eval_steps.append(step)
            history.scores.append(evaluate(model, valid))
            bar.set_postfix(
                {"loss": f"{loss.item():.3f}", valid.metric: f"{history.scores[-1]:.3f}"}
            )
    bar.close()
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict(model: nn.Module, data: TaskData, batch_size: int = 256) -> Tensor:
    """The model's outputs on every example of ``data`` (on the CPU), in evaluation mode."""
    _check_data("data", data)
    batch_size = check_positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    for begin in range(0, len(data), batch_size):
        index = torch.arange(begin, min(begin + batch_size, len(data)))
        inputs, targets, lengths = _batch(data, index, device)
        out = _outputs(model, inputs, targets, lengths).cpu()
        if data.per_step and out.shape[1] < data.targets.shape[1]:  # pad back to the full T
            out = F.pad(out, (0, 0, 0, data.targets.shape[1] - out.shape[1]))
        outputs.append(out)
    model.train(was_training)
    return torch.cat(outputs)


def score(outputs: Tensor, data: TaskData) -> float:
    """The task's metric for ``outputs`` (as :func:`predict` returns them) against ``data.targets``.

    Accuracy counts only the steps whose target is not IGNORE_INDEX (padding, undefined steps).
    """
    _check_data("data", data)
    targets = data.targets
    if data.metric == "mse":
        if outputs.shape != targets.shape:
            raise ValueError(
                f"outputs must have shape {tuple(targets.shape)}, got {tuple(outputs.shape)}"
            )
        return F.mse_loss(outputs.float(), targets.float()).item()
    if outputs.shape[:-1] != targets.shape:
        raise ValueError(
            f"outputs must have shape {(*targets.shape, 'C')}, got {tuple(outputs.shape)}"
        )
    real = targets != IGNORE_INDEX
    correct = (outputs.argmax(-1) == targets) & real
    return (correct.sum() / real.sum()).item()


def evaluate(model: nn.Module, data: TaskData, batch_size: int = 256) -> float:
    """The task's metric on ``data``: accuracy (over real steps when per-step) or MSE."""
    return score(predict(model, data, batch_size), data)


def accuracy_by_distance(
    model: nn.Module,
    make_data: Callable[[int], TaskData],
    distances: Sequence[int],
    batch_size: int = 256,
) -> dict[int, float]:
    """Score ``model`` on ``make_data(d)`` for every ``d`` in ``distances``: ``{d: score}``.

    Example: ``accuracy_by_distance(model, lambda d: spaghetti(500, d, seed=1), range(0, 61, 10))``.
    """
    if not callable(make_data):
        raise TypeError(
            f"make_data must be a function of the distance, got {type(make_data).__name__}"
        )
    results = {}
    for distance in distances:
        data = make_data(distance)
        if not isinstance(data, TaskData):
            raise TypeError(
                f"make_data({distance!r}) must return a TaskData, got {type(data).__name__}"
            )
        results[distance] = evaluate(model, data, batch_size)
    return results


def hidden_state_gradient_norms(model: SequenceClassifier, data: TaskData) -> Tensor:
    """‖∂L/∂h_t‖ at every step t = 0..T-1, averaged over the examples: how much of the loss's
    gradient reaches each step. Returns a (T,) tensor on the CPU.

    L is the summed cross-entropy of the model's answers to every example of ``data``, and h_t
    the hidden state after step t. Backpropagation through time reaches h_t through one Jacobian
    ∂h_{s+1}/∂h_s per later step s, so in a tanh RNN the norm shrinks about geometrically with
    the distance from the question (the vanishing gradient); in an LSTM the cell state carries
    it, scaled by the forget gate at each step.

    ``model`` is a :class:`~course_lib.models.SequenceClassifier` of any kind with one layer read
    in one direction (an ``embedding``, an ``rnn`` and a ``head``); ``data`` holds sequences of
    one length (no padding). The layer's cell is run step by step (``model.rnn.cell()`` shares
    its weights), so that every h_t is a tensor of its own for autograd to differentiate by, and
    ``model.head(h_T)`` gives the answers, as in the model's forward pass. Only ∂L/∂h_t is
    computed: the parameters' ``.grad`` stay as they were.
    """
    check_instance("model", model, SequenceClassifier, "a course_lib.models.SequenceClassifier")
    if model.config.num_layers != 1 or model.config.bidirectional:
        raise ValueError(
            "model must have one layer read in one direction, got "
            f"num_layers={model.config.num_layers}, bidirectional={model.config.bidirectional}"
        )
    _check_data("data", data)
    if data.per_step or data.targets.dim() != 1:
        raise ValueError("data must have one class target per sequence, shape (B,)")
    T = data.inputs.shape[1]
    if data.lengths is not None and bool((data.lengths != T).any()):
        raise ValueError(
            f"data must hold sequences of one length (T={T}), got lengths from "
            f"{int(data.lengths.min())} to {T}; use one distance, e.g. spaghetti(64, 60)"
        )

    device = next(model.parameters()).device
    with torch.enable_grad():  # also under torch.no_grad(): the point is the gradient
        cell = model.rnn.cell()  # shares (not copies) the layer's weights
        x = model.embedding(data.inputs.to(device))  # (B, T, E)
        state, hs = None, []
        for t in range(T):
            state = cell(x[:, t], state)  # h, or (h, c) for an LSTM
            hs.append(state[0] if isinstance(state, tuple) else state)  # (B, H)
        logits = model.head(hs[-1])  # (B, C): the answer, read from h_T as in forward
        loss = F.cross_entropy(logits, data.targets.to(device), reduction="sum")
        grads = torch.autograd.grad(loss, hs)  # dL/dh_t for every t, each (B, H)
    return torch.stack([g.norm(dim=-1).mean() for g in grads]).cpu()  # (T,)

r"""Synthetic, seeded, offline tasks: each one tests one thing a recurrent network must do.

========================  ==============================================  ==================
task                      what it needs                                   chance level
========================  ==============================================  ==================
:func:`spaghetti`         keep one fact over many distracting tokens       1 / subjects
:func:`spaghetti_content` bind a question to one of several facts          1 / facts
:func:`adding`            keep two numbers marked among many (regression)  MSE 1/6
:func:`copy_memory`       reproduce a whole sequence (chapter 06)          1 / alphabet
:func:`timing`            count time steps exactly (peepholes, ch. 04)     1 / intervals
:func:`future_context`    see tokens that come *later* (bidirectional)     1 / alphabet
========================  ==============================================  ==================

Real text (chapter 07) lives in :mod:`course_lib.text` and is re-exported here, so every task is
found in one place: ``load_corpus``, ``split_by_position``, ``CharVocab``, ``streams`` and
``segments`` (contiguous streams for truncated BPTT), and the baselines that need no training,
``unigram_bpc``, ``bigram_bpc`` and ``compressed_bpc`` (gzip / lzma).

The spaghetti question comes in two modes. :func:`spaghetti` is the simple one: one fact, always
the first sentence, and always the same question, so a network can answer by *where* the animal
was (the first animal) as well as by what was said; chapters 00 to 06 use it, because its single
fact is what the first chapters' memory measurements need. :func:`spaghetti_content` asks by
content: several animals ate several foods, the facts' positions vary and the question names one
food, so no rule that ignores the question beats chance; the capstone (08) uses it.

Every generator takes ``n`` (how many examples) and ``seed``, and returns a :class:`TaskData`.
The same seed always gives identical tensors: each call draws from its own
``torch.Generator`` and never touches PyTorch's global random state.

All data is batch-first. Token ids are int64 and id 0 is always ``"<pad>"``. When sequences in a
batch have different lengths they are padded at the end, ``lengths`` says how many steps are
real, and per-step targets at padded steps hold :data:`IGNORE_INDEX` (-100, the value
``torch.nn.functional.cross_entropy`` skips by default), so losses and accuracies count real
steps only.

Papers: the adding problem is from Hochreiter & Schmidhuber (1997), in the form of Le, Jaitly &
Hinton (2015); copy memory from Hochreiter & Schmidhuber (1997) and Arjovsky et al. (2016);
timing tasks from Gers, Schraudolph & Schmidhuber (2002).

Shapes: B batch (= n), T time, I input features, V vocabulary, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from course_lib._validate import check_bool, check_choice, check_int
from course_lib.text import (  # noqa: F401  (re-exported: the real-text task of chapter 07)
    CharVocab,
    Streams,
    bigram_bpc,
    compressed_bpc,
    load_corpus,
    segments,
    split_by_position,
    streams,
    unigram_bpc,
)

IGNORE_INDEX = -100  # per-step target at padded or undefined steps; cross_entropy skips it
PAD = "<pad>"  # token id 0 in every vocabulary

METRICS = ("accuracy", "mse")


@dataclass(frozen=True)
class TaskData:
    """One synthetic data set. ``B`` examples, batch-first.

    Fields beyond the seven of the contract (``classes``) have defaults, so the dataclass can be
    built by hand for tests and exercises.
    """

    inputs: Tensor  # (B, T) int64 token ids, or (B, T, I) float features
    targets: Tensor  # (B,) int64 class, (B, T') int64 per step, or (B,) float for regression
    lengths: Tensor | None  # (B,) int64 real steps of each input; None when every one has T
    chance: float  # the score of guessing: accuracy for classification, MSE for regression
    metric: str  # "accuracy" or "mse"
    vocab: tuple[str, ...] | None  # token names, vocab[id]; None for float inputs
    per_step: bool  # True when targets has one entry per (output) time step
    classes: tuple[str, ...] | None = None  # names of the target classes, classes[target]

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not isinstance(self.inputs, Tensor) or not isinstance(self.targets, Tensor):
            raise TypeError("inputs and targets must be tensors")
        B = self.inputs.shape[0]
        if self.targets.shape[0] != B:
            raise ValueError(f"targets must have {B} rows like inputs, got {self.targets.shape[0]}")
        if self.lengths is not None and tuple(self.lengths.shape) != (B,):
            raise ValueError(f"lengths must have shape ({B},), got {tuple(self.lengths.shape)}")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int | slice | Tensor) -> TaskData:
        """A subset of the examples, e.g. ``data[:800]`` and ``data[800:]`` for a split."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        lengths = None if self.lengths is None else self.lengths[index]
        inputs, targets = self.inputs[index], self.targets[index]
        return replace(self, inputs=inputs, targets=targets, lengths=lengths)

    @property
    def num_classes(self) -> int | None:
        """C, the number of outputs a classifier needs; None for regression."""
        return None if self.classes is None else len(self.classes)

    @property
    def vocab_size(self) -> int | None:
        """V, the number of token ids; None for float inputs."""
        return None if self.vocab is None else len(self.vocab)

    def decode(self, index: int) -> str:
        """Example ``index`` as words, padding left out, with its answer: ``'... -> dog'``."""
        if self.vocab is None:
            raise ValueError(
                "decode needs token inputs; this task has float inputs (vocab is None)"
            )
        if not isinstance(index, int) or not -len(self) <= index < len(self):
            raise ValueError(f"index must be an int in [-{len(self)}, {len(self)}), got {index!r}")
        length = None if self.lengths is None else int(self.lengths[index])
        text = decode(self.inputs[index, :length], self.vocab)
        target = self.targets[index]
        if self.classes is None:
            return text
        if self.per_step:
            if length is not None and target.shape[0] == self.inputs.shape[1]:
                target = target[:length]  # per-step targets share the inputs' padding
            answer = " ".join(self.classes[int(t)] if t != IGNORE_INDEX else "_" for t in target)
        else:
            answer = self.classes[int(target)]
        return f"{text} -> {answer}"


def decode(ids: Tensor | list[int], vocab: tuple[str, ...] | list[str]) -> str:
    """Token ids (one sequence) as a string of words; ``<pad>`` tokens are left out."""
    if isinstance(ids, Tensor):
        if ids.dim() != 1:
            raise ValueError(f"ids must be one sequence (T,), got shape {tuple(ids.shape)}")
        ids = ids.tolist()
    words = []
    for token in ids:
        if not isinstance(token, int) or not 0 <= token < len(vocab):
            raise ValueError(f"ids must be ints in [0, {len(vocab)}), got {token!r}")
        if vocab[token] != PAD:
            words.append(vocab[token])
    return " ".join(words)


# -- argument checks ----------------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    return check_int(name, value, minimum)  # TypeError unless an int, ValueError below minimum


def _check_range(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int ``k`` (every example k) or a pair ``(lo, hi)`` (uniform in lo..hi, inclusive)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (lo, hi), got {value!r}")
        lo = _check_int(f"{name}[0]", value[0], minimum)
        hi = _check_int(f"{name}[1]", value[1], minimum)
        if lo > hi:
            raise ValueError(f"{name} must have lo <= hi, got {value!r}")
        return lo, hi
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or a pair (lo, hi), got {type(value).__name__}")
    _check_int(name, value, minimum)
    return value, value


def _generator(seed: object) -> torch.Generator:
    return torch.Generator().manual_seed(_check_int("seed", seed, 0))


def _uniform_ints(lo: int, hi: int, n: int, generator: torch.Generator) -> Tensor:
    """n ints uniform in lo..hi inclusive."""
    return torch.randint(lo, hi + 1, (n,), generator=generator)


# -- the spaghetti question ---------------------------------------------------------------------

SUBJECTS = ("dog", "cat", "fox", "bird", "cow", "pig", "owl", "frog")
FACT = ("the", "{S}", "ate", "my", "spaghetti", ".")
QUESTION = ("who", "ate", "my", "spaghetti", "?")
# Distractor sentences; "{A}" is any animal, the true subject included, so the model cannot
# answer with "the last animal I saw": it must keep the one from the first sentence. The
# one-word fillers make every distance reachable exactly.
DISTRACTOR_SENTENCES = (
    ("then",),
    ("later",),
    ("it", "rained", "."),
    ("the", "{A}", "slept", "."),
    ("my", "{A}", "ran", "home", "."),
    ("the", "sun", "was", "warm", "."),
    ("a", "{A}", "saw", "the", "{A}", "."),
    ("we", "went", "for", "a", "walk", "."),
)
DISTRACTOR_KINDS = ("sentences", "words")


def spaghetti_vocab(subjects: int = 4) -> tuple[str, ...]:
    """The vocabulary of :func:`spaghetti`: ``<pad>``, the animals, then every other word."""
    words = [PAD, *SUBJECTS[:subjects]]
    for sentence in (FACT, QUESTION, *DISTRACTOR_SENTENCES):
        words += [w for w in sentence if not w.startswith("{") and w not in words]
    return tuple(words)


def spaghetti(
    n: int,
    distance: int | tuple[int, int],
    seed: int = 0,
    *,
    subjects: int = 4,
    distractors: str = "sentences",
) -> TaskData:
    """The running example: "the dog ate my spaghetti . <distractors> who ate my spaghetti ?".

    The answer is the subject of the first sentence, a class in ``0..subjects-1``
    (``classes[target]`` is its name). ``distance`` is the number of distractor tokens between
    the fact and the question: an int, or a pair ``(lo, hi)`` drawn uniformly per example (then
    the batch is padded and ``lengths`` is set). A sequence has ``distance + 11`` tokens.

    ``distractors="sentences"`` (default) fills the gap with short sentences that mention other
    animals ("the cat slept ."), so keeping the *first* subject matters; ``"words"`` draws
    independent filler words without animals (an easier, noise-only variant).

    Chance level: ``1 / subjects`` (the subjects are equally likely).
    """
    n = _check_int("n", n, 1)
    lo, hi = _check_range("distance", distance, 0)
    subjects = _check_int("subjects", subjects, 2)
    if subjects > len(SUBJECTS):
        raise ValueError(f"subjects must be <= {len(SUBJECTS)}, got {subjects}")
    check_choice("distractors", distractors, DISTRACTOR_KINDS)
    generator = _generator(seed)
    vocab = spaghetti_vocab(subjects)
    token_id = {word: i for i, word in enumerate(vocab)}
    animals = list(range(1, subjects + 1))  # ids 1..S are the subjects, in class order
    fillers = [token_id[w] for s in DISTRACTOR_SENTENCES for w in s if not w.startswith("{")]
    fillers = sorted(set(fillers) - {token_id["."]})

    # 1. Draw every random number up front, then assemble the sentences from them in Python.
    answers = torch.randint(0, subjects, (n,), generator=generator)  # (B,)
    distances = _uniform_ints(lo, hi, n, generator)  # (B,)
    draws = torch.rand(n, 3 * hi + 1, generator=generator).tolist()  # enough for any filling

    rows = []
    for answer, gap, u in zip(answers.tolist(), distances.tolist(), draws):
        u = iter(u)
        fact = [animals[answer] if w == "{S}" else token_id[w] for w in FACT]
        middle: list[int] = []
        while len(middle) < gap:  # 2. distractors, exactly `gap` tokens
            if distractors == "words":
                middle.append(fillers[int(next(u) * len(fillers))])
                continue
            fitting = [s for s in DISTRACTOR_SENTENCES if len(s) <= gap - len(middle)]
            sentence = fitting[int(next(u) * len(fitting))]
            animal = animals[int(next(u) * subjects)]  # one animal per sentence, used in its slots
            middle += [animal if w == "{A}" else token_id[w] for w in sentence]
        rows.append(fact + middle + [token_id[w] for w in QUESTION])

    inputs, lengths = _pad(rows)
    return TaskData(
        inputs=inputs,
        targets=answers,
        lengths=None if lo == hi else lengths,
        chance=1.0 / subjects,
        metric="accuracy",
        vocab=vocab,
        per_step=False,
        classes=SUBJECTS[:subjects],
    )


def _pad(rows: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Right-pad token lists with 0 into (B, T); return it and the lengths (B,)."""
    lengths = torch.tensor([len(row) for row in rows])
    inputs = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for b, row in enumerate(rows):
        inputs[b, : len(row)] = torch.tensor(row)
    return inputs, lengths


# -- the spaghetti question, asked by content ----------------------------------------------------

FOODS = ("spaghetti", "pizza", "cake", "soup", "bread", "rice", "pie", "cheese")
CONTENT_FACT = ("the", "{A}", "ate", "my", "{F}", ".")
CONTENT_QUESTION = ("who", "ate", "my", "{F}", "?")
# Distractors for :func:`spaghetti_content`: they mention the same animals and foods, never in an
# "ate my" sentence, so only a fact binds an animal to a food. "{A}" is any of the example's
# animals and "{F}" any food, each drawn afresh; the one-word fillers make every distance exact.
CONTENT_DISTRACTORS = (
    ("then",),
    ("later",),
    ("it", "rained", "."),
    ("the", "{A}", "slept", "."),
    ("we", "cooked", "{F}", "."),
    ("my", "{F}", "was", "hot", "."),
    ("the", "{A}", "ran", "home", "."),
    ("the", "{A}", "saw", "the", "{F}", "."),
    ("a", "{A}", "smelled", "my", "{F}", "."),
)
LEAD = 5  # at most this many distractor tokens come before the facts, so their position varies


def _content_distractors(
    count: int, u, animal_ids: list[int], food_ids: list[int], token_id: dict[str, int]
) -> list[int]:
    """Exactly ``count`` distractor tokens, chosen by the uniform draws ``u`` (an iterator)."""
    tokens: list[int] = []
    while len(tokens) < count:
        fitting = [s for s in CONTENT_DISTRACTORS if len(s) <= count - len(tokens)]
        sentence = fitting[int(next(u) * len(fitting))]
        animal = animal_ids[int(next(u) * len(animal_ids))]  # one animal and one food per
        food = food_ids[int(next(u) * len(food_ids))]  # sentence, used in its slots
        slots = {"{A}": animal, "{F}": food}
        tokens += [slots.get(w) or token_id[w] for w in sentence]
    return tokens


def spaghetti_content_vocab(facts: int = 4, foods: int = 8) -> tuple[str, ...]:
    """The vocabulary of :func:`spaghetti_content`: ``<pad>``, the animals, the foods, the rest."""
    words = [PAD, *SUBJECTS[:facts], *FOODS[:foods]]
    for sentence in (CONTENT_FACT, CONTENT_QUESTION, *CONTENT_DISTRACTORS):
        words += [w for w in sentence if not w.startswith("{") and w not in words]
    return tuple(words)


def spaghetti_content(
    n: int,
    distance: int | tuple[int, int],
    seed: int = 0,
    *,
    facts: int = 4,
    foods: int = 8,
    shuffle: bool = False,
) -> TaskData:
    """The spaghetti question asked by content: several animals ate several foods; who ate this one?

    Example (``facts=2``, distance 5)::

        then the dog ate my cake . the cat ate my pizza . we cooked cake . then who ate my cake ?
        -> dog

    Each example holds ``facts`` facts "the <animal> ate my <food> .", one per animal, each
    with a different food drawn from :data:`FOODS` (the animals in the order of
    :data:`SUBJECTS`, "the dog ..." first; ``shuffle=True`` puts them in a random order), then
    ``distance`` tokens of distractors, then the question, which names one of the foods, chosen
    uniformly. The answer is the animal that ate it: class ``0..facts-1``, ``classes[target]``.
    Before the facts come 0 to :data:`LEAD` distractor tokens, so the facts' positions vary.
    ``distance`` counts the distractor tokens between the *last* fact and the question; the fact
    asked about is any of the ``facts``, so it stands ``distance`` to ``distance + 6 * (facts - 1)``
    tokens before the question. An int, or a pair ``(lo, hi)`` drawn uniformly per example.
    Sequences differ in length (the lead), so the batch is padded and ``lengths`` is set.

    The distractors (:data:`CONTENT_DISTRACTORS`) mention the same animals and foods ("the cat
    saw the pizza .", "a dog smelled my cake ."), but never "ate my": to answer, a network must
    bind the question's food to the animal in the fact that names it.

    With ``shuffle=True`` the answer becomes an interaction of three things (which animal
    came first, what each ate, which food is asked): in docs/EXPERIMENTS.md §7 no tanh RNN
    learned that in 600 steps, and which gated network did was a matter of seed. With the fixed
    order a network must still remember *what* the dog ate and compare it with the question.

    Chance level: ``1 / facts``. Every animal is in exactly one fact and the question picks the
    fact uniformly, so whatever is read *before the question* leaves each answer equally likely:
    any rule that ignores the question (the first or last animal, the animal at a fixed position,
    the most common answer) scores ``1 / facts`` on average (tests/test_tasks.py measures them).

    Chapters 00 to 03 and 06 use :func:`spaghetti` (one fact, always first); the capstone uses
    this.
    """
    n = _check_int("n", n, 1)
    lo, hi = _check_range("distance", distance, 0)
    facts = _check_int("facts", facts, 2)
    if facts > len(SUBJECTS):
        raise ValueError(f"facts must be <= {len(SUBJECTS)}, got {facts}")
    foods = _check_int("foods", foods, facts)
    if foods > len(FOODS):
        raise ValueError(f"foods must be <= {len(FOODS)}, got {foods}")
    shuffle = check_bool("shuffle", shuffle)
    generator = _generator(seed)
    vocab = spaghetti_content_vocab(facts, foods)
    token_id = {word: i for i, word in enumerate(vocab)}
    animal_ids = list(range(1, facts + 1))  # ids 1..facts are the animals, in class order
    food_ids = [token_id[f] for f in FOODS[:foods]]

    # 1. Draw every random number up front, then assemble the sentences from them in Python.
    orders = torch.rand(n, facts, generator=generator).argsort(dim=1)  # (B, facts) animal order
    if not shuffle:  # drawn all the same, so that both modes share every other draw
        orders = torch.arange(facts).expand(n, facts)
    menus = torch.rand(n, foods, generator=generator).argsort(dim=1)[:, :facts]  # (B, facts)
    asked = torch.randint(0, facts, (n,), generator=generator)  # (B,) which fact is asked about
    leads = _uniform_ints(0, LEAD, n, generator)  # (B,)
    distances = _uniform_ints(lo, hi, n, generator)  # (B,)
    draws = torch.rand(n, 3 * (LEAD + hi) + 2, generator=generator).tolist()

    rows, answers = [], []
    for order, menu, q, lead, gap, u in zip(
        orders.tolist(), menus.tolist(), asked.tolist(), leads.tolist(), distances.tolist(), draws
    ):
        u = iter(u)
        row = _content_distractors(lead, u, animal_ids, food_ids, token_id)
        for animal, food in zip(order, menu):  # 2. the facts, one per animal
            slots = {"{A}": animal_ids[animal], "{F}": food_ids[food]}
            row += [slots.get(w) or token_id[w] for w in CONTENT_FACT]
        row += _content_distractors(gap, u, animal_ids, food_ids, token_id)
        asked_food = food_ids[menu[q]]
        row += [asked_food if w == "{F}" else token_id[w] for w in CONTENT_QUESTION]
        rows.append(row)
        answers.append(order[q])

    inputs, lengths = _pad(rows)
    return TaskData(
        inputs=inputs,
        targets=torch.tensor(answers),
        lengths=lengths,
        chance=1.0 / facts,
        metric="accuracy",
        vocab=vocab,
        per_step=False,
        classes=SUBJECTS[:facts],
    )


# -- the adding problem -------------------------------------------------------------------------


def adding(n: int, length: int, seed: int = 0) -> TaskData:
    r"""The adding problem: add the two marked numbers of a long sequence.

    ``inputs`` is (B, T, 2): channel 0 holds numbers uniform in [0, 1], channel 1 is 1 at exactly
    two steps (one in the first half, one in the second) and 0 elsewhere. The target is the sum
    of the two marked numbers, (B,) float.

    This is Le, Jaitly & Hinton's (2015) form; Hochreiter & Schmidhuber (1997) used numbers in
    [-1, 1], marked the first within the first ten steps and scaled the target to [0, 1].

    Chance level: always predicting the mean sum 1 gives MSE = Var(u_1 + u_2) = 2 · 1/12 = 1/6
    (two independent uniforms, each of variance 1/12).
    """
    n = _check_int("n", n, 1)
    length = _check_int("length", length, 2)
    generator = _generator(seed)
    values = torch.rand(n, length, generator=generator)  # (B, T)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)  # (B,)
    second = torch.randint(half, length, (n,), generator=generator)  # (B,)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]  # (B,)
    return TaskData(
        inputs=torch.stack([values, markers], dim=-1),  # (B, T, 2)
        targets=targets,
        lengths=None,
        chance=1.0 / 6.0,
        metric="mse",
        vocab=None,
        per_step=False,
    )


# -- copy memory ---------------------------------------------------------------------------------

BLANK, DELIMITER = "<blank>", "<delim>"


def symbol_vocab(alphabet: int) -> tuple[str, ...]:
    """``<pad>``, the symbols ``a, b, c, ...`` (ids 1..alphabet), ``<blank>``, ``<delim>``."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    if not 2 <= alphabet <= len(letters):
        raise ValueError(f"alphabet must be in 2..{len(letters)}, got {alphabet}")
    return (PAD, *letters[:alphabet], BLANK, DELIMITER)


def copy_memory(n: int, length: int, seed: int = 0, *, alphabet: int = 8, gap: int = 0) -> TaskData:
    """Copy a sequence: read ``length`` symbols, then a delimiter, then write them out again.

    ``inputs`` (B, length + gap + 1) are the symbols, ``gap`` blanks, and ``<delim>``;
    ``targets`` (B, length) are the same symbols, the output at each decoder step. Targets are
    token ids of the same vocabulary (``classes == vocab``), so an encoder–decoder can feed its
    previous output back in. With ``gap > 0`` the symbols must also be kept over that many blanks
    (the "copy memory" form of Arjovsky et al. 2016).

    Chance level: ``1 / alphabet`` per output step.
    """
    n = _check_int("n", n, 1)
    length = _check_int("length", length, 1)
    alphabet = _check_int("alphabet", alphabet, 2)
    gap = _check_int("gap", gap, 0)
    vocab = symbol_vocab(alphabet)
    generator = _generator(seed)
    symbols = torch.randint(1, alphabet + 1, (n, length), generator=generator)  # (B, length)
    blanks = torch.full((n, gap), vocab.index(BLANK), dtype=torch.long)
    delimiter = torch.full((n, 1), vocab.index(DELIMITER), dtype=torch.long)
    return TaskData(
        inputs=torch.cat([symbols, blanks, delimiter], dim=1),  # (B, length + gap + 1)
        targets=symbols.clone(),  # (B, length)
        lengths=None,
        chance=1.0 / alphabet,
        metric="accuracy",
        vocab=vocab,
        per_step=True,
        classes=vocab,
    )


# -- timing ------------------------------------------------------------------------------------

TIMING_VOCAB = (PAD, "-", "*")  # "-" is a silent step, "*" a spike


def timing(
    n: int, seed: int = 0, *, intervals: tuple[int, int] = (5, 20), length: int = 40
) -> TaskData:
    """Measure the delay between two spikes: how many steps from the first "*" to the second?

    Each sequence has ``length`` steps, silent ("-") except two spikes ("*"). The first comes at
    a random step, the second ``k`` steps later, ``k`` uniform in ``intervals = (lo, hi)``; then
    silence again until the end. The answer, read after the last step, is the class ``k - lo``
    (``classes[target]`` is ``str(k)``). Nothing in the input marks the passing time, so the
    network must count, and an answer one step off is wrong. This is the "measuring spike
    delays" task of Gers, Schraudolph & Schmidhuber (2002), as a classification.

    Chance level: ``1 / (hi - lo + 1)`` (every interval equally likely).
    """
    n = _check_int("n", n, 1)
    lo, hi = _check_range("intervals", intervals, 1)
    length = _check_int("length", length, hi + 2)
    generator = _generator(seed)
    delays = _uniform_ints(lo, hi, n, generator)  # (B,)
    first = torch.randint(
        0, length - hi - 1, (n,), generator=generator
    )  # (B,) leaves a silent tail
    inputs = torch.full((n, length), TIMING_VOCAB.index("-"), dtype=torch.long)
    rows = torch.arange(n)
    inputs[rows, first] = TIMING_VOCAB.index("*")
    inputs[rows, first + delays] = TIMING_VOCAB.index("*")
    return TaskData(
        inputs=inputs,  # (B, T)
        targets=delays - lo,  # (B,)
        lengths=None,
        chance=1.0 / (hi - lo + 1),
        metric="accuracy",
        vocab=TIMING_VOCAB,
        per_step=False,
        classes=tuple(str(k) for k in range(lo, hi + 1)),
    )


# -- future context -----------------------------------------------------------------------------


def future_context(
    n: int, length: int | tuple[int, int], shift: int = 2, seed: int = 0, *, alphabet: int = 8
) -> TaskData:
    """Per-step target y_t = x_{t+shift}: name the token ``shift`` steps *ahead*.

    A network that reads left to right has not seen x_{t+shift} when it must answer at step t,
    so it can only guess; reading right to left (a bidirectional network) makes it easy.
    ``length`` is an int or a pair ``(lo, hi)`` (padded batch with ``lengths``). The last
    ``shift`` steps of each sequence have no answer and hold :data:`IGNORE_INDEX`, as padding does.
    Targets are token ids (``classes == vocab``).

    Chance level: ``1 / alphabet`` (symbols are uniform and independent).
    """
    n = _check_int("n", n, 1)
    shift = _check_int("shift", shift, 1)
    lo, hi = _check_range("length", length, shift + 1)
    alphabet = _check_int("alphabet", alphabet, 2)
    vocab = symbol_vocab(alphabet)
    generator = _generator(seed)
    lengths = _uniform_ints(lo, hi, n, generator)  # (B,)
    inputs = torch.randint(1, alphabet + 1, (n, hi), generator=generator)  # (B, T)
    steps = torch.arange(hi).unsqueeze(0)  # (1, T)
    inputs = inputs.masked_fill(steps >= lengths.unsqueeze(1), 0)  # padding is id 0
    targets = torch.full_like(inputs, IGNORE_INDEX)
    answerable = steps < (lengths - shift).unsqueeze(1)  # (B, T)
    targets[:, :-shift] = torch.where(answerable[:, :-shift], inputs[:, shift:], IGNORE_INDEX)
    return TaskData(
        inputs=inputs,
        targets=targets,
        lengths=None if lo == hi else lengths,
        chance=1.0 / alphabet,
        metric="accuracy",
        vocab=vocab,
        per_step=True,
        classes=vocab,
    )

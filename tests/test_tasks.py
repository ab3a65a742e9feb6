"""The synthetic tasks: seeded, well-shaped, with the chance levels they claim."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from course_lib import tasks
from course_lib.tasks import IGNORE_INDEX, TaskData

# One small call per generator: (name, function of seed).
GENERATORS = {
    "spaghetti": lambda seed: tasks.spaghetti(16, 7, seed),
    "spaghetti_range": lambda seed: tasks.spaghetti(16, (0, 12), seed),
    "spaghetti_words": lambda seed: tasks.spaghetti(16, 7, seed, distractors="words"),
    "spaghetti_content": lambda seed: tasks.spaghetti_content(16, 7, seed),
    "spaghetti_content_range": lambda seed: tasks.spaghetti_content(16, (0, 30), seed, facts=3),
    "spaghetti_content_shuffled": lambda seed: tasks.spaghetti_content(16, 7, seed, shuffle=True),
    "adding": lambda seed: tasks.adding(16, 20, seed),
    "copy_memory": lambda seed: tasks.copy_memory(16, 5, seed, gap=3),
    "timing": lambda seed: tasks.timing(16, seed),
    "future_context": lambda seed: tasks.future_context(16, 9, 2, seed),
    "future_context_range": lambda seed: tasks.future_context(16, (4, 9), 2, seed),
}


def same(a: TaskData, b: TaskData) -> bool:
    lengths_same = (a.lengths is None and b.lengths is None) or (
        a.lengths is not None and b.lengths is not None and torch.equal(a.lengths, b.lengths)
    )
    return torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets) and lengths_same


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_data_and_global_state_untouched(name):
    make = GENERATORS[name]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = make(3)
    assert torch.equal(torch.rand(1), expected_next), "the generator must not use the global RNG"
    assert same(first, make(3))


@pytest.mark.parametrize("name", GENERATORS)
def test_different_seeds_differ(name):
    assert not same(GENERATORS[name](0), GENERATORS[name](1))


@pytest.mark.parametrize("name", GENERATORS)
def test_fields_are_consistent(name):
    data = GENERATORS[name](0)
    B = len(data)
    assert B == 16 and data.targets.shape[0] == B
    assert data.metric in ("accuracy", "mse")
    assert 0 < data.chance < 1
    if data.lengths is not None:
        assert data.lengths.dtype == torch.long and data.lengths.shape == (B,)
        assert int(data.lengths.max()) == data.inputs.shape[1]
        steps = torch.arange(data.inputs.shape[1])
        padding = steps >= data.lengths.unsqueeze(1)
        assert (data.inputs[padding] == 0).all(), "padding must be token 0"
        assert (data.inputs[~padding] != 0).all(), "real steps are never <pad>"
        if data.per_step:
            assert (data.targets[padding] == IGNORE_INDEX).all()
    if data.vocab is not None:
        assert data.vocab[0] == tasks.PAD
        assert data.inputs.dtype == torch.long
        assert 0 <= int(data.inputs.min()) and int(data.inputs.max()) < data.vocab_size
    if data.metric == "accuracy":
        real = data.targets[data.targets != IGNORE_INDEX]
        assert 0 <= int(real.min()) and int(real.max()) < data.num_classes


def test_spaghetti_layout_and_answer():
    data = tasks.spaghetti(50, 6, seed=0)
    assert data.inputs.shape == (50, 6 + 11) and data.lengths is None
    assert data.chance == pytest.approx(1 / 4) and data.num_classes == 4
    text = data.decode(0)
    words = text.split()
    assert words[:1] + words[2:6] == ["the", "ate", "my", "spaghetti", "."]
    assert text.endswith(f"who ate my spaghetti ? -> {words[1]}")
    # the answer is the animal in the first sentence, for every example
    subject_ids = data.inputs[:, 1]
    assert torch.equal(subject_ids - 1, data.targets)


def test_spaghetti_distances_and_distractors():
    data = tasks.spaghetti(200, (0, 30), seed=0, subjects=6)
    assert data.chance == pytest.approx(1 / 6)
    distances = data.lengths - 11
    assert int(distances.min()) >= 0 and int(distances.max()) <= 30
    assert len(set(distances.tolist())) > 10, "distances should be spread over the range"
    # "sentences" mention other animals after the fact; "words" never do
    animals = (data.inputs >= 1) & (data.inputs <= 6)
    assert animals[:, 6:].any()
    words = tasks.spaghetti(200, 20, seed=0, distractors="words")
    assert not ((words.inputs[:, 6:] >= 1) & (words.inputs[:, 6:] <= 4)).any()


def test_adding_targets_and_chance():
    data = tasks.adding(20000, 30, seed=0)
    assert data.inputs.shape == (20000, 30, 2) and data.inputs.dtype == torch.float32
    markers = data.inputs[..., 1]
    assert torch.equal(markers.sum(1), torch.full((20000,), 2.0))
    assert (markers[:, :15].sum(1) == 1).all(), "one marker in each half"
    assert torch.allclose((data.inputs[..., 0] * markers).sum(1), data.targets)
    assert data.chance == pytest.approx(1 / 6)
    # predicting the mean 1.0 scores the stated chance MSE
    assert ((data.targets - 1.0) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.01)


def test_copy_memory_layout():
    data = tasks.copy_memory(10, 5, seed=0, alphabet=6, gap=3)
    assert data.inputs.shape == (10, 5 + 3 + 1) and data.targets.shape == (10, 5)
    assert torch.equal(data.inputs[:, :5], data.targets)
    assert data.vocab[int(data.inputs[0, -1])] == tasks.DELIMITER
    assert data.chance == pytest.approx(1 / 6) and data.per_step
    assert data.decode(0).endswith(
        "<blank> <delim> -> " + tasks.decode(data.targets[0], data.vocab)
    )


def test_future_context_targets_look_ahead():
    data = tasks.future_context(30, (5, 12), shift=3, seed=0)
    for b in range(30):
        n = int(data.lengths[b])
        assert torch.equal(data.targets[b, : n - 3], data.inputs[b, 3:n])
        assert (data.targets[b, n - 3 :] == IGNORE_INDEX).all()
    assert data.chance == pytest.approx(1 / 8)


def test_timing_task():
    data = tasks.timing(200, seed=0)
    assert data.chance == pytest.approx(1 / data.num_classes)
    spikes = data.inputs == data.vocab.index("*")
    assert (spikes.sum(1) == 2).all(), "two spikes per sequence"


def test_decode_readable():
    assert tasks.decode(torch.tensor([0, 1, 2]), ("<pad>", "a", "b")) == "a b"
    data = tasks.spaghetti(3, (0, 5), seed=0)
    assert "<pad>" not in data.decode(0)
    assert data[1:].decode(0) == data.decode(1), "slicing keeps examples intact"


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda: tasks.spaghetti(0, 5), ValueError, "n"),
        (lambda: tasks.spaghetti(10.0, 5), TypeError, "n"),
        (lambda: tasks.spaghetti(10, -1), ValueError, "distance"),
        (lambda: tasks.spaghetti(10, (5, 2)), ValueError, "distance"),
        (lambda: tasks.spaghetti(10, "5"), TypeError, "distance"),
        (lambda: tasks.spaghetti(10, 5, seed=-1), ValueError, "seed"),
        (lambda: tasks.spaghetti(10, 5, subjects=99), ValueError, "subjects"),
        (lambda: tasks.spaghetti(10, 5, distractors="noise"), ValueError, "distractors"),
        (lambda: tasks.adding(10, 1), ValueError, "length"),
        (lambda: tasks.copy_memory(10, 0), ValueError, "length"),
        (lambda: tasks.copy_memory(10, 5, alphabet=1), ValueError, "alphabet"),
        (lambda: tasks.future_context(10, 3, shift=3), ValueError, "length"),
        (lambda: tasks.future_context(10, 8, shift=0), ValueError, "shift"),
        (lambda: tasks.timing(10, intervals=(9, 3)), ValueError, "intervals"),
        (lambda: tasks.spaghetti(3, 4).decode(7), ValueError, "index"),
        (lambda: tasks.decode(torch.tensor([5]), ("<pad>", "a")), ValueError, "ids"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, names):
    with pytest.raises(error, match=names):
        call()


# -- the spaghetti question asked by content -----------------------------------------------------


def _animal_ids(data: TaskData) -> Tensor:
    """(B, T) bool: which tokens are animals (ids 1..facts are the animals, in class order)."""
    return (data.inputs >= 1) & (data.inputs <= data.num_classes)


def _class_at(data: TaskData, positions: Tensor) -> Tensor:
    """The class each example's token at ``positions`` names; class 0 ("dog") where it is none."""
    tokens = data.inputs[torch.arange(len(data)), positions.clamp(min=0)]
    is_animal = (tokens >= 1) & (tokens <= data.num_classes) & (positions >= 0)
    return torch.where(is_animal, tokens - 1, torch.zeros_like(tokens))


def _first_animal(data: TaskData) -> Tensor:
    steps = torch.arange(data.inputs.shape[1]).expand_as(data.inputs)
    big = data.inputs.shape[1]
    return _class_at(data, torch.where(_animal_ids(data), steps, big).min(1).values % big)


def _last_animal(data: TaskData) -> Tensor:
    steps = torch.arange(data.inputs.shape[1]).expand_as(data.inputs)
    return _class_at(data, torch.where(_animal_ids(data), steps, -1).max(1).values)


def _answer_positions(data: TaskData) -> Tensor:
    """Where the answer stands: the animal just before "ate my <asked food>" (B,)."""
    ate = data.vocab.index("ate")
    asked_food = data.inputs[torch.arange(len(data)), data.lengths - 2]  # "... my <food> ?"
    inputs = data.inputs
    binds = (inputs[:, 1:-3] == ate) & (inputs[:, 3:-1] == asked_food.unsqueeze(1))
    binds[torch.arange(len(data)), data.lengths - 5] = False  # the question's own "ate my F"
    assert (binds.sum(1) == 1).all(), "exactly one fact names the asked food"
    return binds.float().argmax(1)  # index of the animal = index of "ate" - 1, shifted by 1


def _binding_rule(data: TaskData) -> Tensor:
    return _class_at(data, _answer_positions(data))


def _accuracy(guesses: Tensor, data: TaskData) -> float:
    return (guesses == data.targets).float().mean().item()


CONTENT_N = 4000


def _tolerance(chance: float, n: int = CONTENT_N) -> float:
    """Four binomial standard deviations of an accuracy measured on n examples at chance."""
    return 4 * (chance * (1 - chance) / n) ** 0.5


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("facts", [2, 3, 4])
def test_spaghetti_content_answer_is_the_bound_fact(facts, shuffle):
    data = tasks.spaghetti_content(500, (0, 40), seed=0, facts=facts, shuffle=shuffle)
    assert data.chance == pytest.approx(1 / facts) and data.num_classes == facts
    assert data.classes == tasks.SUBJECTS[:facts]
    assert data.lengths is not None and data.lengths.dtype == torch.long
    # The rule that reads the question and binds it to the right fact is always right ...
    assert _accuracy(_binding_rule(data), data) == 1.0
    # ... every example holds `facts` facts, one per animal, each with its own food.
    ate = data.vocab.index("ate")
    for b in range(20):
        n = int(data.lengths[b])
        words = data.inputs[b, :n].tolist()
        facts_at = [t for t in range(1, n - 5) if words[t] == ate]
        assert len(facts_at) == facts, data.decode(b)
        assert sorted(words[t - 1] for t in facts_at) == list(range(1, facts + 1))
        assert len({words[t + 2] for t in facts_at}) == facts, "each animal ate another food"
        assert all(words[t - 2] == data.vocab.index("the") for t in facts_at)


def _fact_animals(data: TaskData) -> list[list[int]]:
    """The animals of each example's facts, in the order they are told."""
    ate = data.vocab.index("ate")
    rows = []
    for b in range(len(data)):
        words = data.inputs[b, : int(data.lengths[b]) - len(tasks.CONTENT_QUESTION)].tolist()
        rows.append([words[t - 1] for t in range(1, len(words)) if words[t] == ate])
    return rows


def test_spaghetti_content_order_fixed_unless_shuffled_and_other_draws_shared():
    fixed = tasks.spaghetti_content(400, (0, 20), seed=5, facts=3)
    shuffled = tasks.spaghetti_content(400, (0, 20), seed=5, facts=3, shuffle=True)
    assert all(animals == [1, 2, 3] for animals in _fact_animals(fixed)), "dog, cat, fox"
    orders = {tuple(animals) for animals in _fact_animals(shuffled)}
    assert len(orders) == 6, "every order of three animals occurs"
    # Only the order differs: the lengths (lead and distance) are the same draws, and the
    # answer is the animal of the same fact position's food in both.
    assert torch.equal(fixed.lengths, shuffled.lengths)
    assert _accuracy(_binding_rule(shuffled), shuffled) == 1.0
    assert 0.2 < (fixed.targets == shuffled.targets).float().mean() < 0.5


def test_spaghetti_content_distance_and_lead():
    for distance in (0, 7, 33):
        data = tasks.spaghetti_content(300, distance, seed=1, facts=3)
        fact_tokens = 3 * len(tasks.CONTENT_FACT)
        question = len(tasks.CONTENT_QUESTION)
        leads = data.lengths - fact_tokens - question - distance
        assert int(leads.min()) == 0 and int(leads.max()) == tasks.LEAD
        # the last fact ends exactly `distance` tokens before the question
        ends = data.inputs[torch.arange(300), leads + fact_tokens - 1]
        assert (ends == data.vocab.index(".")).all()
    spread = tasks.spaghetti_content(500, (0, 30), seed=2)
    distances = spread.lengths - 4 * 6 - 5
    assert len(set(distances.tolist())) > 20, "distances and leads spread over the range"


def test_spaghetti_content_distractors_mention_animals_and_foods_but_bind_none():
    data = tasks.spaghetti_content(300, 40, seed=3, facts=4)
    foods = [data.vocab.index(f) for f in tasks.FOODS]
    ends = data.lengths - len(tasks.CONTENT_QUESTION)  # the question starts here
    gap = torch.stack([data.inputs[b, e - 40 : e] for b, e in enumerate(ends.tolist())])  # (B, 40)
    assert ((gap >= 1) & (gap <= 4)).any(1).float().mean() > 0.9, "animals among distractors"
    assert torch.isin(gap, torch.tensor(foods)).any(1).float().mean() > 0.9, "foods too"
    assert not (gap == data.vocab.index("ate")).any(), "no distractor says 'ate'"


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("facts", [2, 4])
def test_spaghetti_content_question_blind_rules_score_chance(facts, shuffle):
    """First animal, last animal, the token where the answer stands most often (counted from the
    start and from the end), the most frequent answer: all at chance within 4 binomial std."""
    fit_split, data = (
        tasks.spaghetti_content(CONTENT_N, (0, 60), seed=seed, facts=facts, shuffle=shuffle)
        for seed in (10, 11)
    )
    chance, tol = data.chance, _tolerance(data.chance)

    from_start = _answer_positions(fit_split)
    from_end = fit_split.lengths - from_start
    common_start = int(from_start.mode().values)
    common_end = int(from_end.mode().values)
    majority = int(fit_split.targets.mode().values)

    rules = {
        "first animal": _first_animal(data),
        "last animal": _last_animal(data),
        "token at the commonest answer position": _class_at(
            data, torch.full((len(data),), common_start)
        ),
        "token at the commonest answer position from the end": _class_at(
            data, data.lengths - common_end
        ),
        "most frequent answer": torch.full((len(data),), majority),
    }
    for name, guesses in rules.items():
        accuracy = _accuracy(guesses, data)
        assert abs(accuracy - chance) <= tol, f"{name}: {accuracy:.3f}, chance {chance:.3f}"


def test_spaghetti_content_answers_balanced_at_each_distance():
    for distance in (0, 20):
        data = tasks.spaghetti_content(CONTENT_N, distance, seed=4, facts=4)
        counts = torch.bincount(data.targets, minlength=4).float() / CONTENT_N
        assert (counts - 0.25).abs().max() <= _tolerance(0.25)
        assert abs(_accuracy(_last_animal(data), data) - 0.25) <= _tolerance(0.25)


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda: tasks.spaghetti_content(0, 5), ValueError, "n"),
        (lambda: tasks.spaghetti_content(True, 5), TypeError, "n"),
        (lambda: tasks.spaghetti_content(10, -1), ValueError, "distance"),
        (lambda: tasks.spaghetti_content(10, (9, 2)), ValueError, "distance"),
        (lambda: tasks.spaghetti_content(10, 2.5), TypeError, "distance"),
        (lambda: tasks.spaghetti_content(10, 5, seed="0"), TypeError, "seed"),
        (lambda: tasks.spaghetti_content(10, 5, facts=1), ValueError, "facts"),
        (lambda: tasks.spaghetti_content(10, 5, facts=9), ValueError, "facts"),
        (lambda: tasks.spaghetti_content(10, 5, facts=3.0), TypeError, "facts"),
        (lambda: tasks.spaghetti_content(10, 5, facts=4, foods=3), ValueError, "foods"),
        (lambda: tasks.spaghetti_content(10, 5, foods=99), ValueError, "foods"),
        (lambda: tasks.spaghetti_content(10, 5, shuffle="False"), TypeError, "shuffle"),
        (lambda: tasks.spaghetti_content(10, 5, shuffle=1), TypeError, "shuffle"),
    ],
)
def test_spaghetti_content_bad_arguments_name_the_argument(call, error, names):
    with pytest.raises(error, match=names):
        call()

"""course_lib.text: the shipped corpus, encoding, splits by position, streams for truncated BPTT,
and the bits-per-character baselines, each against a value computed another way."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import text as T
from course_lib.text import CharVocab, Streams

ROOT = Path(__file__).resolve().parents[1]
CORPUS_PATH = ROOT / "course_lib" / "data" / T.CORPUS_FILE


@pytest.fixture(scope="module")
def corpus() -> str:
    return T.load_corpus()


# -- the corpus ---------------------------------------------------------------------------------


def test_corpus_file_hash_is_pinned():
    # The hash written here, not only the one in the module: changing both by accident is harder.
    digest = hashlib.sha256(CORPUS_PATH.read_bytes()).hexdigest()
    assert digest == "801176734df97a0bae43c7b75a4a1e250bbd2f935ec8fc0f8cd06a286831b99c"
    assert digest == T.CORPUS_SHA256


def test_corpus_is_the_expected_prose(corpus):
    assert len(corpus) == 231_267
    assert corpus.startswith("PRIDE AND PREJUDICE\n\nBy Jane Austen")
    assert "It is a truth universally acknowledged" in corpus
    assert "Chapter 23" in corpus and "Chapter 24" not in corpus  # volume I ends with chapter 23
    assert corpus.isascii() and "\r" not in corpus
    assert len(set(corpus)) == 74


def test_corpus_licence_and_origin_are_recorded():
    readme = (CORPUS_PATH.parent / "README.md").read_text()
    assert T.CORPUS_FILE in readme and T.CORPUS_SHA256 in readme
    assert "public domain" in readme.lower()


def test_changed_corpus_is_refused(monkeypatch):
    monkeypatch.setattr(T, "CORPUS_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        T.load_corpus()
    assert T.load_corpus(check_hash=False).startswith("PRIDE AND PREJUDICE")


def test_load_corpus_is_deterministic_and_leaves_random_state_alone(corpus):
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    expected = (torch.rand(1), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    vocab = CharVocab.from_text(T.load_corpus())
    ids = vocab.encode(corpus)
    parts = T.split_by_position(ids)
    data = T.streams(parts[0], 16)
    list(T.segments(data, 50))
    T.bigram_bpc(parts[0], parts[2], len(vocab))
    assert (torch.rand(1), random.random(), np.random.rand()) == expected
    assert torch.equal(ids, CharVocab.from_text(corpus).encode(corpus))


# -- vocabulary ---------------------------------------------------------------------------------


def test_vocab_round_trip_and_sorted_ids():
    vocab = CharVocab.from_text("banana bread")
    assert vocab.chars == (" ", "a", "b", "d", "e", "n", "r")
    ids = vocab.encode("bread")
    assert ids.dtype == torch.int64 and ids.tolist() == [2, 6, 4, 1, 3]
    assert vocab.decode(ids) == "bread" and vocab.decode([2, 1]) == "ba"
    assert len(vocab) == 7 and vocab.encode("").shape == (0,)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda v: v.encode("xyz"), ValueError, "outside the vocabulary"),
        (lambda v: v.encode(b"ab"), TypeError, "text must be a str"),
        (lambda v: v.decode([0, 9]), ValueError, r"ids must be in 0\.\.2"),
        (lambda v: v.decode([0, 1.0]), TypeError, "ids must hold ints"),
        (lambda v: v.decode([True]), TypeError, "ids must hold ints"),
        (lambda v: v.decode(torch.zeros(2, 2, dtype=torch.long)), ValueError, "1-D integer"),
        (lambda v: v.decode(torch.zeros(2)), ValueError, "1-D integer"),
        (lambda v: v.decode("ab"), TypeError, "ids must be"),
        (lambda v: CharVocab.from_text(""), ValueError, "non-empty"),
        (lambda v: CharVocab(("a", "a")), ValueError, "repeat"),
        (lambda v: CharVocab(("ab",)), ValueError, "single characters"),
        (lambda v: CharVocab(["a"]), TypeError, "chars must be a tuple"),
    ],
)
def test_vocab_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(CharVocab.from_text("abc"))


# -- split by position --------------------------------------------------------------------------


def test_split_is_by_position_and_covers_everything(corpus):
    ids = CharVocab.from_text(corpus).encode(corpus)
    train, valid, test = T.split_by_position(ids, (0.8, 0.1, 0.1))
    assert torch.equal(torch.cat([train, valid, test]), ids)  # in order, nothing lost or shuffled
    assert len(train) == round(0.8 * len(ids)) and abs(len(valid) - len(test)) <= 1
    assert torch.equal(train[-5:], ids[len(train) - 5 : len(train)])


@pytest.mark.parametrize(
    ("ids", "fractions", "error", "match"),
    [
        (torch.arange(100), (0.8, 0.1), ValueError, "three entries"),
        (torch.arange(100), [0.8, 0.1, 0.1], TypeError, "fractions must be a tuple"),
        (torch.arange(100), (0.8, 0.1, 0.2), ValueError, "sum to 1"),
        (torch.arange(100), (1.0, 0.0, 0.0), ValueError, r"fractions\[0\]"),
        (torch.arange(100), (0.8, "0.1", 0.1), TypeError, r"fractions\[1\] must be a number"),
        (torch.arange(4), (0.98, 0.01, 0.01), ValueError, "too short"),
        (torch.arange(10.0), (0.8, 0.1, 0.1), TypeError, "integer ids"),
        (torch.arange(12).view(3, 4), (0.8, 0.1, 0.1), ValueError, "1-D"),
        ([1, 2, 3, 4], (0.8, 0.1, 0.1), TypeError, "torch.Tensor"),
    ],
)
def test_split_bad_input(ids, fractions, error, match):
    with pytest.raises(error, match=match):
        T.split_by_position(ids, fractions)


# -- streams and segments -----------------------------------------------------------------------


def test_streams_are_contiguous_and_targets_shifted():
    ids = torch.arange(103)
    data = T.streams(ids, batch_size=4)
    assert isinstance(data, Streams)
    assert data.inputs.shape == data.targets.shape == (4, 25)  # (103 - 1) // 4 = 25
    assert data.batch_size == 4 and data.length == 25
    assert torch.equal(data.targets, data.inputs + 1)  # the next character everywhere
    for b in range(4):  # row b reads the text from position b * L on
        assert torch.equal(data.inputs[b], torch.arange(25 * b, 25 * b + 25))


def test_segments_continue_each_other():
    data = T.streams(torch.arange(1001), batch_size=5)  # L = 200
    windows = list(T.segments(data, seq_len=30))
    assert len(windows) == 200 // 30  # the short last window is dropped
    for inputs, targets in windows:
        assert inputs.shape == targets.shape == (5, 30)
    for (first, _), (second, _) in zip(windows, windows[1:]):
        assert torch.equal(second[:, 0], first[:, -1] + 1)  # window k+1 continues window k
    whole = torch.cat([inputs for inputs, _ in windows], dim=1)
    assert torch.equal(whole, data.inputs[:, : 30 * len(windows)])


def test_segments_on_the_corpus_have_the_lecture_shapes(corpus):
    ids = CharVocab.from_text(corpus).encode(corpus)
    train = T.split_by_position(ids)[0]
    data = T.streams(train, 32)
    windows = list(T.segments(data, 64))
    assert len(windows) == (len(train) - 1) // 32 // 64
    assert all(x.shape == (32, 64) and x.dtype == torch.int64 for x, _ in windows)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: T.streams(torch.arange(10), 0), ValueError, "batch_size must be a positive int"),
        (lambda: T.streams(torch.arange(10), 2.0), TypeError, "batch_size must be an int"),
        (lambda: T.streams(torch.arange(10), True), TypeError, "batch_size must be an int"),
        (lambda: T.streams(torch.arange(10), 10), ValueError, "too large"),
        (lambda: T.streams(torch.arange(1), 1), ValueError, "at least 2 ids"),
        (lambda: T.streams(torch.tensor([1, -2, 3]), 1), ValueError, "non-negative"),
        (lambda: T.streams(torch.ones(5, dtype=torch.bool), 1), TypeError, "integer ids"),
        (lambda: list(T.segments(torch.arange(10), 2)), TypeError, "data must be a Streams"),
        (lambda: list(T.segments(T.streams(torch.arange(11), 2), 6)), ValueError, "longer"),
        (lambda: list(T.segments(T.streams(torch.arange(11), 2), "5")), TypeError, "seq_len"),
    ],
)
def test_streams_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- bits per character -------------------------------------------------------------------------


def test_unigram_matches_counting_by_hand():
    train, test = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 2])
    # add-one counts over V=4: 3, 2, 2, 1 of 8
    expected = -(math.log2(3 / 8) + math.log2(2 / 8)) / 2
    assert T.unigram_bpc(train, test, 4, alpha=1.0) == pytest.approx(expected)


def test_bigram_matches_counting_by_hand():
    train, test = torch.tensor([0, 1, 0, 1, 1]), torch.tensor([0, 1])
    V, alpha = 2, 0.5
    pairs = Counter(zip(train.tolist(), train[1:].tolist()))
    firsts = Counter(train[:-1].tolist())

    def p(a, b):
        return (pairs[(a, b)] + alpha) / (firsts[a] + alpha * V)

    expected = -(math.log2(p(1, 0)) + math.log2(p(0, 1))) / 2  # first test id follows train[-1]
    assert T.bigram_bpc(train, test, V, alpha=alpha) == pytest.approx(expected)


def test_bigram_beats_unigram_on_the_corpus(corpus):
    vocab = CharVocab.from_text(corpus)
    train, _, test = T.split_by_position(vocab.encode(corpus))
    uni, bi = T.unigram_bpc(train, test, len(vocab)), T.bigram_bpc(train, test, len(vocab))
    assert 3.0 < bi < uni < math.log2(len(vocab))


def test_compressed_bpc_is_the_compressed_size():
    sample = "It is a truth universally acknowledged. " * 20
    gz = 8 * len(gzip.compress(sample.encode(), compresslevel=9, mtime=0)) / len(sample)
    xz = 8 * len(lzma.compress(sample.encode(), preset=9 | lzma.PRESET_EXTREME)) / len(sample)
    assert T.compressed_bpc(sample, "gzip") == pytest.approx(gz)
    assert T.compressed_bpc(sample, "lzma") == pytest.approx(xz)


def test_priming_with_the_same_text_makes_it_nearly_free(corpus):
    page = corpus[5000:10000]
    for method in T.COMPRESSORS:
        alone = T.compressed_bpc(page, method)
        primed = T.compressed_bpc(page, method, prime=page)  # the page again: a long match
        assert primed < 0.1 * alone, (method, alone, primed)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: T.compressed_bpc("abc", "zip"), ValueError, "method must be one of"),
        (lambda: T.compressed_bpc(b"abc"), TypeError, "text must be a str"),
        (lambda: T.compressed_bpc(""), ValueError, "non-empty"),
        (lambda: T.compressed_bpc("abc", prime=None), TypeError, "prime must be a str"),
        (lambda: T.unigram_bpc(torch.arange(3), torch.arange(3), 2), ValueError, "vocab_size=2"),
        (lambda: T.unigram_bpc(torch.arange(3), torch.arange(3), "3"), TypeError, "vocab_size"),
        (lambda: T.bigram_bpc(torch.arange(3), torch.arange(3), 3, alpha=0), ValueError, "alpha"),
        (lambda: T.bigram_bpc(torch.arange(1), torch.arange(1), 3), ValueError, "at least 2"),
        (lambda: T.bigram_bpc([0, 1], torch.arange(2), 3), TypeError, "train must be"),
        (lambda: T.nats_to_bits(-1.0), ValueError, "loss"),
        (lambda: T.load_corpus("yes"), TypeError, "check_hash must be a bool"),
    ],
)
def test_baselines_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_nats_to_bits():
    assert T.nats_to_bits(math.log(2)) == pytest.approx(1.0)
    assert T.nats_to_bits(0) == 0.0


def test_tasks_re_exports_the_text_task():
    from course_lib import tasks, text

    for name in ("load_corpus", "split_by_position", "CharVocab", "streams", "segments"):
        assert getattr(tasks, name) is getattr(text, name)

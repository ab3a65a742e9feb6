r"""Real text for a character-level language model (chapter 07): load, encode, split, batch, score.

The corpus is the first volume of Jane Austen's *Pride and Prejudice* (1813, public domain),
shipped with the package in ``course_lib/data/`` so it is the same on every machine and needs no
download; ``course_lib/data/README.md`` says where it came from. :data:`CORPUS_SHA256` pins it.

What this module does, in the order the lecture uses it:

1. :func:`load_corpus` reads the text; :class:`CharVocab` maps each character to an id and back.
2. :func:`split_by_position` cuts the ids into train / validation / test *by position* (the
   first 80 %, the next 10 %, the last 10 %), never at random: a random split would put
   sentences of the same page on both sides and make held-out text look easier than it is.
3. :func:`streams` lays the training ids out as B contiguous streams, row b continuing the text
   where row b-1 stopped, and :func:`segments` walks them T characters at a time, so the hidden
   state at the end of one segment is the right starting state for the next one (truncated
   backpropagation through time, Williams & Peng 1990; the layout of Zaremba et al. 2014).
4. Baselines that need no training, all in bits per character on held-out text:
   :func:`unigram_bpc`, :func:`bigram_bpc` (add-alpha smoothed counts) and
   :func:`compressed_bpc` (``gzip -9`` or ``lzma``: a compressor is a language model too, and its
   output size in bits per character is an honest yardstick).

The training loop itself is not here: the lecture writes it out. Nothing in this module draws
random numbers, so it never touches any random state.

Shapes: B batch (streams side by side), T time (characters per segment), L stream length,
V vocabulary size.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import torch
from torch import Tensor

from course_lib._validate import (
    check_choice,
    check_instance,
    check_number,
    check_positive_int,
    check_tensor,
)

CORPUS_FILE = "pride_and_prejudice_vol1.txt"
# sha256 of the file's bytes (UTF-8, "\n" line ends): a changed corpus changes every number.
CORPUS_SHA256 = "801176734df97a0bae43c7b75a4a1e250bbd2f935ec8fc0f8cd06a286831b99c"
COMPRESSORS = ("gzip", "lzma")


def load_corpus(check_hash: bool = True) -> str:
    """The course's corpus as one string (about 231,000 characters of English prose).

    With ``check_hash`` (the default) the file's sha256 must equal :data:`CORPUS_SHA256`; a
    mismatch (an edited or re-encoded copy) is a ``ValueError`` rather than silently different
    numbers.
    """
    if not isinstance(check_hash, bool):
        raise TypeError(f"check_hash must be a bool (True or False), got {check_hash!r}")
    raw = resources.files("course_lib").joinpath("data", CORPUS_FILE).read_bytes()
    if check_hash:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != CORPUS_SHA256:
            raise ValueError(
                f"course_lib/data/{CORPUS_FILE} has sha256 {digest}, expected {CORPUS_SHA256}; "
                "the corpus was changed (restore it from the repository)"
            )
    return raw.decode("utf-8")


def _check_text(name: str, text: object, allow_empty: bool = False) -> str:
    check_instance(name, text, str, "a str")
    if not text and not allow_empty:
        raise ValueError(f"{name} must be a non-empty str, got ''")
    return text  # type: ignore[return-value]


@dataclass(frozen=True)
class CharVocab:
    """Characters and their ids: ``chars[i]`` is the character with id ``i``.

    Built from the whole corpus (:meth:`from_text`), so every character of the held-out text has
    an id; the ids are in sorted character order, so the same text always gives the same ids.
    """

    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        check_instance("chars", self.chars, tuple, "a tuple of single characters")
        if not self.chars:
            raise ValueError("chars must hold at least one character, got ()")
        for char in self.chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"chars must hold single characters, got {char!r}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must not repeat a character")
        object.__setattr__(self, "_index", {char: i for i, char in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of ``text``: its distinct characters, sorted."""
        return cls(tuple(sorted(set(_check_text("text", text)))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        """``text`` as a 1-D int64 tensor of ids; a character outside the vocabulary is an error."""
        _check_text("text", text, allow_empty=True)
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        unknown = set(text) - index.keys()
        if unknown:
            raise ValueError(
                f"text has characters outside the vocabulary: {''.join(sorted(unknown))!r}"
            )
        return torch.tensor([index[char] for char in text], dtype=torch.int64)

    def decode(self, ids: Tensor | list[int]) -> str:
        """A 1-D tensor (or list) of ids back to a string."""
        if isinstance(ids, Tensor):
            if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
                raise ValueError(
                    f"ids must be a 1-D integer tensor, got {ids.dtype} of shape {tuple(ids.shape)}"
                )
            ids = ids.tolist()
        check_instance("ids", ids, list, "a 1-D tensor or a list of ints")
        out = []
        for token in ids:
            if isinstance(token, bool) or not isinstance(token, int):
                raise TypeError(f"ids must hold ints, got {type(token).__name__} {token!r}")
            if not 0 <= token < len(self.chars):
                raise ValueError(f"ids must be in 0..{len(self.chars) - 1}, got {token}")
            out.append(self.chars[token])
        return "".join(out)


def _check_ids(name: str, ids: object, min_length: int = 1) -> Tensor:
    ids = check_tensor(name, ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got dtype {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one long text), got shape {tuple(ids.shape)}")
    if ids.numel() < min_length:
        raise ValueError(f"{name} must hold at least {min_length} ids, got {ids.numel()}")
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"{name} must hold non-negative ids, got min {int(ids.min())}")
    return ids


def split_by_position(
    ids: Tensor, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> tuple[Tensor, Tensor, Tensor]:
    """Cut a 1-D id tensor into consecutive (train, validation, test) parts.

    ``fractions`` are the parts' shares of the text, in that order, each > 0, summing to 1. The
    parts are views in text order: validation starts where training stops, test where validation
    stops.
    """
    ids = _check_ids("ids", ids, min_length=3)
    check_instance("fractions", fractions, tuple, "a tuple (train, validation, test)")
    if len(fractions) != 3:
        raise ValueError(f"fractions must have three entries, got {len(fractions)}")
    for i, share in enumerate(fractions):
        check_number(f"fractions[{i}]", share, 0.0, 1.0, low_open=True, high_open=True)
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions)})")
    n = ids.numel()
    first = round(n * fractions[0])
    second = first + round(n * fractions[1])
    if not 0 < first < second < n:
        raise ValueError(f"ids of length {n} is too short for fractions {fractions}")
    return ids[:first], ids[first:second], ids[second:]


@dataclass(frozen=True)
class Streams:
    """B contiguous streams of a text: ``targets[b, j]`` is the character after ``inputs[b, j]``.

    Row b holds characters ``b*L .. b*L + L - 1`` of the text, so reading row b left to right is
    reading the book; ``targets`` is the same layout shifted one character on (teacher forcing:
    the true previous character is always the input, whatever the model predicted).
    """

    inputs: Tensor  # (B, L) int64
    targets: Tensor  # (B, L) int64

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[0]

    @property
    def length(self) -> int:
        return self.inputs.shape[1]


def streams(ids: Tensor, batch_size: int) -> Streams:
    """Lay ``ids`` out as ``batch_size`` contiguous streams of equal length L.

    ``L = (len(ids) - 1) // batch_size``; the few ids left over at the end are dropped (fewer
    than ``batch_size``), so that every stream has a next-character target at every position.
    """
    ids = _check_ids("ids", ids, min_length=2)
    check_positive_int("batch_size", batch_size)
    length = (ids.numel() - 1) // batch_size
    if length < 1:
        raise ValueError(
            f"batch_size={batch_size} is too large for {ids.numel()} ids: each stream needs at "
            "least one input and its target"
        )
    used = length * batch_size
    inputs = ids[:used].reshape(batch_size, length)  # (B, L)
    targets = ids[1 : used + 1].reshape(batch_size, length)  # (B, L), one character on
    return Streams(inputs, targets)


def segments(data: Streams, seq_len: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive (inputs, targets) windows of ``seq_len`` steps, each of shape (B, T).

    Window k covers positions ``k*T .. k*T + T - 1`` of every stream, so window k+1 continues
    window k in each row: carry the hidden state across, detached. A last window shorter than
    ``seq_len`` is dropped, so every window has the same shape. One pass is one epoch.
    """
    check_instance("data", data, Streams, "a Streams (from course_lib.text.streams)")
    check_positive_int("seq_len", seq_len)
    if seq_len > data.length:
        raise ValueError(f"seq_len={seq_len} is longer than the streams (L={data.length})")
    for start in range(0, data.length - seq_len + 1, seq_len):
        yield data.inputs[:, start : start + seq_len], data.targets[:, start : start + seq_len]


def nats_to_bits(loss: float) -> float:
    """A mean cross-entropy in nats (what ``F.cross_entropy`` returns) in bits: divide by ln 2."""
    return check_number("loss", loss, 0.0) / math.log(2)


def _check_alpha(alpha: object) -> float:
    return check_number("alpha", alpha, 0.0, low_open=True)


def unigram_bpc(train: Tensor, test: Tensor, vocab_size: int, alpha: float = 1.0) -> float:
    """Bits per character of ``test`` under character frequencies counted on ``train``.

    Each of the ``vocab_size`` characters gets ``alpha`` extra counts (add-alpha smoothing), so a
    character never seen in training still has a non-zero probability.
    """
    train = _check_ids("train", train)
    test = _check_ids("test", test)
    vocab_size = _check_vocab(vocab_size, train, test)
    alpha = _check_alpha(alpha)
    counts = torch.bincount(train, minlength=vocab_size).double() + alpha  # (V,)
    log2_p = torch.log2(counts / counts.sum())
    return float(-log2_p[test].mean())


def bigram_bpc(train: Tensor, test: Tensor, vocab_size: int, alpha: float = 0.1) -> float:
    """Bits per character of ``test`` when each character is predicted from the one before it.

    Pair counts from ``train`` with add-alpha smoothing: p(b | a) = (n(a, b) + alpha) /
    (n(a) + alpha V). ``test`` is taken to continue ``train`` (as a split by position does), so
    its first character is predicted from the last training character.
    """
    train = _check_ids("train", train, min_length=2)
    test = _check_ids("test", test)
    vocab_size = _check_vocab(vocab_size, train, test)
    alpha = _check_alpha(alpha)
    pairs = train[:-1] * vocab_size + train[1:]
    counts = torch.bincount(pairs, minlength=vocab_size * vocab_size).double()
    counts = counts.reshape(vocab_size, vocab_size) + alpha  # (V, V): row = previous character
    log2_p = torch.log2(counts / counts.sum(dim=1, keepdim=True))
    previous = torch.cat([train[-1:], test[:-1]])
    return float(-log2_p[previous, test].mean())


def _check_vocab(vocab_size: object, *parts: Tensor) -> int:
    check_positive_int("vocab_size", vocab_size)
    largest = max(int(part.max()) for part in parts)
    if largest >= vocab_size:  # type: ignore[operator]
        raise ValueError(f"vocab_size={vocab_size} but the ids go up to {largest}")
    return vocab_size  # type: ignore[return-value]


def _compress(data: bytes, method: str) -> int:
    if method == "gzip":
        return len(gzip.compress(data, compresslevel=9, mtime=0))  # what `gzip -9` does
    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))  # `xz -9e`


def compressed_bpc(text: str, method: str = "gzip", prime: str = "") -> float:
    """Bits per character that ``gzip -9`` or ``lzma`` (``xz -9e``) need for ``text``.

    With ``prime`` (for example the training text) the compressor reads ``prime`` first and only
    the extra bytes that ``text`` costs are counted: ``8 * (size(prime + text) - size(prime)) /
    len(text)``, the compressor's answer to "given the training text, how surprising is the
    held-out text?". Sizes include the format's few header bytes. Characters are measured as
    UTF-8 bytes, one per character for the ASCII corpus.
    """
    text = _check_text("text", text)
    check_choice("method", method, COMPRESSORS)
    prime = _check_text("prime", prime, allow_empty=True)
    primed = prime.encode("utf-8")
    extra = _compress(primed + text.encode("utf-8"), method)
    if prime:
        extra -= _compress(primed, method)
    return 8 * extra / len(text)

r"""Attention: a learned, soft look-up over a sequence of encoder states.

An encoder reads a source sequence into S vectors (the *keys*, and the *values* that are
averaged; usually the same vectors). A *query* (for example the decoder's state) asks which of
them matter now. Each source position s gets a score, the scores become weights with a softmax
over the source axis, and the answer, the *context*, is the weighted average of the values:

.. math::

    e_s = \operatorname{score}(q, k_s), \qquad
    \alpha_s = \frac{\exp(e_s)}{\sum_{s' \,\text{real}} \exp(e_{s'})}, \qquad
    c = \sum_s \alpha_s v_s                                                           \tag{1}

where :math:`q` is the query, :math:`k_s` and :math:`v_s` are the key and value at source
position :math:`s`, :math:`\alpha_s` is the attention weight and :math:`c` the context. Padded
positions (``mask`` False, or past ``lengths``) are given :math:`e_s = -\infty`, so their weight
is exactly zero and the weights of the real positions sum to one. The scores:

.. math::

    \text{additive:}\;\; e_s = v^\top \tanh(W_q q + W_k k_s + b)                         \tag{2}

    \text{dot:}\;\; e_s = q^\top k_s \qquad
    \text{scaled dot:}\;\; e_s = \frac{q^\top k_s}{\sqrt{d}} \qquad
    \text{general:}\;\; e_s = q^\top W k_s                                               \tag{3}

(2) is Bahdanau, Cho & Bengio (2015), "Neural machine translation by jointly learning to align
and translate": :math:`W_q` and :math:`W_k` project query and key into a common space of
``hidden_size`` A units and the vector :math:`v` turns each sum into one number. We add one bias
:math:`b` (in :math:`W_k`) that the paper leaves out; it only shifts the tanh. (3) are Luong, Pham
& Manning (2015), "Effective approaches to attention-based neural machine translation": the dot
score needs query and key of the same size d; the division by :math:`\sqrt{d}` (Vaswani et al.
2017) keeps the scores of random d-dimensional vectors near unit variance, so the softmax does
not saturate as d grows.

Shapes: B batch, S source positions, Tq query steps, Hq / Hk / Hv query, key and value
features, A the additive score's hidden units. Every score function takes the query as
(B, Tq, Hq); the modules also take a single query per example, (B, Hq).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib._validate import check_float_like, check_lengths, check_tensor

# -- the three steps of equation (1), as functions ---------------------------------------------


def dot_scores(query: Tensor, keys: Tensor, scaled: bool = False) -> Tensor:
    """Dot-product scores (3): query (B, Tq, d), keys (B, S, d) -> scores (B, Tq, S)."""
    scores = query @ keys.transpose(1, 2)  # (B, Tq, S)
    return scores / math.sqrt(query.shape[-1]) if scaled else scores


def additive_scores(query_proj: Tensor, keys_proj: Tensor, v: Tensor) -> Tensor:
    """Additive scores (2) from projected inputs: W_q q (B, Tq, A), W_k k + b (B, S, A), v (A,).

    Broadcasting pairs every query step with every source position: (B, Tq, 1, A) + (B, 1, S, A).
    """
    energy = torch.tanh(query_proj.unsqueeze(2) + keys_proj.unsqueeze(1))  # (B, Tq, S, A)
    return energy @ v  # (B, Tq, S)


def attend(scores: Tensor, values: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Softmax over the source axis and weighted average (1).

    scores (B, Tq, S), values (B, S, Hv), mask (B, S) bool with True at real positions.
    Returns context (B, Tq, Hv) and weights (B, Tq, S); weights are exactly 0 where mask is False.
    """
    if mask is not None:
        # -inf before the softmax: exp(-inf) = 0, so padding gets no weight and no gradient.
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))  # (B, Tq, S)
    weights = torch.softmax(scores, dim=-1)  # (B, Tq, S), sums to 1 over S
    context = weights @ values  # (B, Tq, Hv)
    return context, weights


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True at the first lengths[b] positions."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


# -- modules -----------------------------------------------------------------------------------


class _Attention(nn.Module):
    """Checks the inputs, runs ``score`` and :func:`attend`; subclasses define ``score``."""

    def project_keys(self, keys: Tensor) -> Tensor:
        """The part of the score that depends on the keys only (identity unless overridden).

        A decoder asks many queries of the same keys; it can compute this once per source
        and pass it as ``projected_keys`` at every step (like hoisting W_ih x out of an RNN loop).
        """
        return keys

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        """query (B, Tq, Hq), projected keys (B, S, ...) -> scores (B, Tq, S)."""
        raise NotImplementedError

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        lengths: Tensor | list[int] | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` over ``keys``; average ``values`` (default: the keys).

        query (B, Hq) or (B, Tq, Hq); keys (B, S, Hk); values (B, S, Hv); either ``mask``
        (B, S) bool, True at real positions, or ``lengths`` (B,) ints in 1..S;
        ``projected_keys``: ``self.project_keys(keys)`` if already computed.
        Returns context (B, Hv) and weights (B, S), or (B, Tq, Hv) and (B, Tq, S) for a 3-D query.
        """
        values = keys if values is None else values
        single_step = self._check(query, keys, values)
        mask = self._make_mask(mask, lengths, keys)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        elif projected_keys.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"projected_keys must have the keys' (B, S) = {tuple(keys.shape[:2])}, "
                f"got {tuple(projected_keys.shape)}; pass project_keys(keys)"
            )
        if single_step:
            query = query.unsqueeze(1)  # (B, 1, Hq)
        context, weights = attend(self.score(query, projected_keys), values, mask)
        if single_step:
            return context.squeeze(1), weights.squeeze(1)  # (B, Hv), (B, S)
        return context, weights

    # -- readable errors ---------------------------------------------------------------------

    def _check(self, query: Tensor, keys: Tensor, values: Tensor) -> bool:
        """Check types, ranks, sizes, dtypes and devices; return True for a (B, Hq) query.

        Typed as tensors, checked as anything: a learner's list still gets a clear TypeError.
        """
        for name, tensor in (("query", query), ("keys", keys), ("values", values)):
            check_tensor(name, tensor)
            if not tensor.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
        if query.dim() not in (2, 3):
            raise ValueError(
                f"query must have shape (B, Hq) or (B, Tq, Hq), got {tuple(query.shape)}"
            )
        for name, tensor in (("keys", keys), ("values", values)):
            if tensor.dim() != 3:
                raise ValueError(
                    f"{name} must have shape (B, S, features), got {tuple(tensor.shape)}"
                )
        B, S, _ = keys.shape
        if query.shape[0] != B:
            raise ValueError(f"query has batch size {query.shape[0]} but keys have {B}")
        if values.shape[:2] != keys.shape[:2]:
            raise ValueError(
                f"values must have the keys' batch and source length (B, S) = {(B, S)}, "
                f"got {tuple(values.shape[:2])}"
            )
        if S == 0:
            raise ValueError("keys have no source positions (S=0); there is nothing to attend to")
        for name, tensor in (("keys", keys), ("values", values)):
            if tensor.dtype != query.dtype:
                raise TypeError(f"{name} has dtype {tensor.dtype} but query has {query.dtype}")
            if tensor.device != query.device:
                raise ValueError(f"{name} is on {tensor.device} but query is on {query.device}")
        self._check_sizes(query, keys)
        return query.dim() == 2

    def _check_sizes(self, query: Tensor, keys: Tensor) -> None:
        """Feature sizes and parameter dtype/device; each score has its own rules."""

    @staticmethod
    def _make_mask(mask: Tensor | None, lengths: object, keys: Tensor) -> Tensor | None:
        """Turn ``mask`` or ``lengths`` into a (B, S) bool mask on the keys' device, or None."""
        B, S, _ = keys.shape
        if mask is not None and lengths is not None:
            raise ValueError("pass mask or lengths, not both")
        if lengths is not None:
            return lengths_to_mask(check_lengths(lengths, B, S).to(keys.device), S)
        if mask is None:
            return None
        check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(
                f"mask must be a bool tensor (True = real position), got dtype {mask.dtype}; "
                f"for lengths use lengths=..."
            )
        if tuple(mask.shape) != (B, S):
            raise ValueError(f"mask must have shape (B, S) = {(B, S)}, got {tuple(mask.shape)}")
        if mask.device != keys.device:
            raise ValueError(f"mask is on {mask.device} but keys are on {keys.device}")
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"mask is all False in row(s) {empty}: every example needs at least one real "
                f"position, or its softmax would be 0/0"
            )
        return mask


class AdditiveAttention(_Attention):
    """Additive (Bahdanau) attention, score (2): :math:`v^\\top \\tanh(W_q q + W_k k + b)`.

    ``query_size`` Hq and ``key_size`` Hk may differ; ``hidden_size`` A is the size of the space
    in which query and key are added.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)  # W_q
        self.key_proj = nn.Linear(key_size, hidden_size)  # W_k and b
        self.v = nn.Parameter(torch.empty(hidden_size))  # v
        nn.init.uniform_(self.v, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))

    def extra_repr(self) -> str:
        sizes = (self.query_size, self.key_size, self.hidden_size)
        return "query_size={}, key_size={}, hidden_size={}".format(*sizes)

    def _check_sizes(self, query: Tensor, keys: Tensor) -> None:
        if query.shape[-1] != self.query_size:
            raise ValueError(f"query must have {self.query_size} features, got {query.shape[-1]}")
        if keys.shape[-1] != self.key_size:
            raise ValueError(f"keys must have {self.key_size} features, got {keys.shape[-1]}")
        check_float_like("query", query, self.v)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)  # W_k k + b: (B, S, A)

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        return additive_scores(self.query_proj(query), projected_keys, self.v)  # (B, Tq, S)


class DotAttention(_Attention):
    """Dot-product (Luong) attention, score (3): :math:`q^\\top k`, or :math:`q^\\top k/\\sqrt{d}`
    with ``scaled=True``. No parameters; query and keys must have the same size d."""

    def __init__(self, scaled: bool = False) -> None:
        super().__init__()
        self.scaled = scaled

    def extra_repr(self) -> str:
        return f"scaled={self.scaled}"

    def _check_sizes(self, query: Tensor, keys: Tensor) -> None:
        if query.shape[-1] != keys.shape[-1]:
            raise ValueError(
                f"dot attention needs query and keys of the same size, got query {query.shape[-1]} "
                f"and keys {keys.shape[-1]} features (use GeneralAttention or AdditiveAttention)"
            )

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        return dot_scores(query, projected_keys, self.scaled)  # (B, Tq, S)


class GeneralAttention(_Attention):
    """Luong's "general" score (3), :math:`q^\\top W k`: a dot product after a learned map of the
    keys, so query and keys may have different sizes."""

    def __init__(self, query_size: int, key_size: int) -> None:
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}"

    def _check_sizes(self, query: Tensor, keys: Tensor) -> None:
        if query.shape[-1] != self.query_size:
            raise ValueError(f"query must have {self.query_size} features, got {query.shape[-1]}")
        if keys.shape[-1] != self.key_size:
            raise ValueError(f"keys must have {self.key_size} features, got {keys.shape[-1]}")
        check_float_like("query", query, self.key_proj.weight)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)  # W k: (B, S, Hq)

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        return dot_scores(query, projected_keys)  # (B, Tq, S)


def make_attention(
    kind: str, query_size: int, key_size: int, hidden_size: int | None = None
) -> _Attention:
    """Build an attention module by name: "additive", "dot", "scaled" or "general"."""
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, hidden_size or key_size)
    if kind in ("dot", "scaled"):
        if query_size != key_size:
            raise ValueError(
                f"{kind} attention needs query_size == key_size, got {query_size} and {key_size}"
            )
        return DotAttention(scaled=kind == "scaled")
    if kind == "general":
        return GeneralAttention(query_size, key_size)
    raise ValueError(f'kind must be "additive", "dot", "scaled" or "general", got {kind!r}')


class MultiHeadSelfAttention(nn.Module):
    r"""Self-attention (Vaswani et al. 2017): every position is a query over all positions.

    Each of ``num_heads`` heads projects the input x (B, T, d_model) to its own queries, keys
    and values of size ``d_model // num_heads`` and applies scaled dot attention (1, 3); the heads'
    contexts are concatenated and mixed by an output projection. There is no recurrence: order
    enters only through the positional embeddings that the model adds to x.
    """

    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model, self.num_heads = d_model, num_heads
        # One matmul for queries, keys and values of all heads (minGPT's packed projection).
        self.qkv_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, d_model), mask (B, T) bool -> output (B, T, d_model), weights (B, nh, T, T)."""
        B, T, _ = x.shape
        nh, dh = self.num_heads, self.d_model // self.num_heads
        q, k, v = self.qkv_proj(x).split(self.d_model, dim=-1)  # each (B, T, d_model)
        # Fold the heads into the batch so each head is one ordinary attention: (B*nh, T, dh).
        q, k, v = (
            t.reshape(B, T, nh, dh).transpose(1, 2).reshape(B * nh, T, dh) for t in (q, k, v)
        )
        head_mask = None if mask is None else mask.repeat_interleave(nh, dim=0)  # (B*nh, T)
        context, weights = attend(dot_scores(q, k, scaled=True), v, head_mask)  # (B*nh, T, dh)
        context = context.reshape(B, nh, T, dh).transpose(1, 2).reshape(B, T, self.d_model)
        return self.out_proj(context), weights.reshape(B, nh, T, T)

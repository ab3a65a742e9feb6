r"""The models of chapter 06: attention over an RNN encoder, and attention without any RNN.

* :class:`EncoderDecoder` — an RNN encoder–decoder (Sutskever et al. 2014; Cho et al. 2014) for
  sequence-to-sequence tasks such as copying, with or without attention (Bahdanau et al. 2015).
  Without attention the decoder sees the source only through the encoder's last state, one
  fixed vector however long the source is; with attention it looks back at every encoder state
  at every output step. Trained with teacher forcing, evaluated with greedy decoding.
* :class:`AttentiveReader` — reads a sequence with an RNN and pools its states with attention
  under one learned query, then classifies (in the spirit of Hermann et al. 2015's reader). For
  the spaghetti question: the weights show which token the answer came from.
* :class:`SelfAttentionClassifier` — no recurrence at all: token and position embeddings, one
  block of multi-head self-attention (Vaswani et al. 2017), pooling and a classifier. The bridge
  to transformers.

The decoder step of the encoder–decoder, with :math:`s_{t-1}` the decoder's previous state,
:math:`y_{t-1}` the previous output token, :math:`e(\cdot)` its embedding and
:math:`k_1..k_S` the encoder's outputs:

.. math::

    c_t = \operatorname{attend}(s_{t-1};\, k_{1..S})
    \;\text{(or } c_t = k_S \text{ without attention)},
    \qquad s_t = \operatorname{LSTMCell}([e(y_{t-1}); c_t],\, s_{t-1}),
    \qquad p(y_t) = \operatorname{softmax}(W_o [s_t; c_t] + b_o)

Without attention, :math:`c_t` is the encoder's last output at every step (Cho et al. 2014
feed it the same way), so the two models differ only in where the context comes from.

Shapes: B batch, S source length, T target length, V vocabulary, E embedding, H hidden units,
C classes. All data is batch-first, token ids are int64.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib._validate import (
    check_bool,
    check_choice,
    check_lengths,
    check_positive_int,
    check_tensor,
    check_token_ids,
)
from course_lib.attention import MultiHeadSelfAttention, lengths_to_mask, make_attention
from course_lib.cells import LSTMCell
from course_lib.layers import LSTM

ATTENTION_KINDS = ("additive", "dot", "scaled", "general")


def _mask(lengths: object, ids: Tensor) -> Tensor | None:
    """(B, T) bool mask of real positions from ``lengths`` (None when every sequence is full)."""
    if lengths is None:
        return None
    B, T = ids.shape
    return lengths_to_mask(check_lengths(lengths, B, T).to(ids.device), T)


class EncoderDecoder(nn.Module):
    """An LSTM encoder–decoder; ``attention``: None, "additive", "dot", "scaled" or "general".

    Source and target tokens share one vocabulary of ``vocab_size`` ids (as in
    :func:`course_lib.tasks.copy_memory`). The decoder's input vocabulary has one extra token,
    ``bos_id = vocab_size``, the start symbol that it reads before its first output.
    ``output_steps`` is how many tokens greedy decoding writes when no target is given
    (None: as many as the source has). ``attention_size`` is the additive score's A; small is
    enough to compare a query with a key, and each decoder step costs B·S·A.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 16,
        hidden_size: int = 48,
        attention: str | None = "additive",
        output_steps: int | None = None,
        attention_size: int = 16,
    ) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("embedding_size", embedding_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("attention_size", attention_size)
        check_choice("attention", attention, (None, *ATTENTION_KINDS))
        if output_steps is not None:
            check_positive_int("output_steps", output_steps)
        self.vocab_size, self.hidden_size, self.attention_kind = vocab_size, hidden_size, attention
        self.output_steps = output_steps
        self.bos_id = vocab_size
        self.source_embedding = nn.Embedding(vocab_size, embedding_size)
        self.encoder = LSTM(embedding_size, hidden_size, batch_first=True)
        self.target_embedding = nn.Embedding(vocab_size + 1, embedding_size)  # + the start symbol
        self.decoder = LSTMCell(embedding_size + hidden_size, hidden_size)
        self.attention = (
            None
            if attention is None
            else make_attention(attention, hidden_size, hidden_size, attention_size)
        )
        self.output = nn.Linear(2 * hidden_size, vocab_size)  # W_o, b_o over [s_t; c_t]

    def encode(self, source: Tensor, lengths: object = None):
        """source (B, S) -> encoder outputs (B, S, H), their mask (B, S) or None, and the state."""
        check_token_ids("source", source, self.vocab_size)
        mask = _mask(lengths, source)
        keys, (h_n, c_n) = self.encoder(self.source_embedding(source), lengths=lengths)  # (B, S, H)
        return keys, mask, (h_n[0], c_n[0])  # the decoder starts where the encoder stopped

    def decode_step(
        self, previous: Tensor, state, keys: Tensor, mask: Tensor | None, projected: Tensor
    ):
        """One decoder step: previous tokens (B,) -> logits (B, V), state, weights (B, S) or None.

        ``projected`` is ``attention.project_keys(keys)``, or without attention the encoder's
        last output (B, H).
        """
        s, _ = state
        if self.attention is None:
            context, weights = projected, None  # the same fixed vector at every step
        else:  # query = the decoder's previous state s_{t-1}
            context, weights = self.attention(
                s, keys, mask=mask, projected_keys=projected
            )  # (B, H), (B, S)
        state = self.decoder(torch.cat([self.target_embedding(previous), context], dim=-1), state)
        logits = self.output(torch.cat([state[0], context], dim=-1))  # (B, V)
        return logits, state, weights

    def forward(
        self, source: Tensor, target: Tensor | None = None, lengths: object = None
    ) -> Tensor:
        """Logits (B, T, V). With ``target`` (B, T): teacher forcing, the decoder reads the true
        previous token. Without: greedy decoding for ``output_steps`` steps (default S), the
        decoder reads its own best guess."""
        if target is None:
            return self._run(source, lengths, self._steps(source, None), target=None)[0]
        check_token_ids("target", target, self.vocab_size)
        if target.shape[0] != source.shape[0]:
            raise ValueError(
                f"target has batch size {target.shape[0]} but source has {source.shape[0]}"
            )
        return self._run(source, lengths, steps=target.shape[1], target=target)[0]

    @torch.no_grad()
    def generate(self, source: Tensor, steps: int | None = None, lengths: object = None):
        """Greedy decoding: tokens (B, steps) and attention weights (B, steps, S) (None without)."""
        logits, weights = self._run(source, lengths, self._steps(source, steps), target=None)
        return logits.argmax(-1), weights

    def _steps(self, source: Tensor, steps: int | None) -> int:
        source = check_tensor("source", source)
        if steps is not None:
            return check_positive_int("steps", steps)
        return self.output_steps or source.shape[-1]

    def _run(self, source, lengths, steps, target):
        keys, mask, state = self.encode(source, lengths)
        # The keys' share of the score does not change from step to step: compute it once.
        projected = state[0] if self.attention is None else self.attention.project_keys(keys)
        previous = torch.full(
            (source.shape[0],), self.bos_id, dtype=torch.long, device=source.device
        )
        all_logits, all_weights = [], []
        for t in range(steps):
            logits, state, weights = self.decode_step(previous, state, keys, mask, projected)
            all_logits.append(logits)
            all_weights.append(weights)
            # Teacher forcing: read the true token next; otherwise read our own best guess.
            previous = target[:, t] if target is not None else logits.argmax(-1)
        weights = None if self.attention is None else torch.stack(all_weights, dim=1)  # (B, T, S)
        return torch.stack(all_logits, dim=1), weights  # (B, T, V)


class AttentiveReader(nn.Module):
    """Embedding -> LSTM encoder -> attention pooling under a learned query -> linear classifier.

    ``bidirectional`` (default True) lets each position's state know what comes after it, e.g.
    that "dog" is followed by "ate my spaghetti".
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_size: int = 32,
        hidden_size: int = 32,
        attention: str = "additive",
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("num_classes", num_classes)
        check_choice("attention", attention, ATTENTION_KINDS)
        check_bool("bidirectional", bidirectional)
        self.vocab_size = vocab_size
        key_size = hidden_size * (2 if bidirectional else 1)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.encoder = LSTM(
            embedding_size, hidden_size, batch_first=True, bidirectional=bidirectional
        )
        self.query = nn.Parameter(0.1 * torch.randn(key_size))  # one question asked of every text
        self.attention = make_attention(attention, key_size, key_size)
        self.classifier = nn.Linear(key_size, num_classes)

    def read(self, inputs: Tensor, lengths: object = None) -> tuple[Tensor, Tensor]:
        """inputs (B, T) -> logits (B, C) and attention weights (B, T)."""
        check_token_ids("inputs", inputs, self.vocab_size)
        mask = _mask(lengths, inputs)
        keys, _ = self.encoder(self.embedding(inputs), lengths=lengths)  # (B, T, D*H)
        query = self.query.expand(inputs.shape[0], -1)  # (B, D*H)
        context, weights = self.attention(query, keys, mask=mask)  # (B, D*H), (B, T)
        return self.classifier(context), weights

    def forward(self, inputs: Tensor, lengths: object = None) -> Tensor:
        """inputs (B, T) -> logits (B, C)."""
        return self.read(inputs, lengths)[0]


class SelfAttentionClassifier(nn.Module):
    """Token + learned position embeddings -> one transformer block -> masked mean -> classifier.

    The block is post-norm as in Vaswani et al. (2017): x = LayerNorm(x + SelfAttention(x)),
    then x = LayerNorm(x + FeedForward(x)). ``max_len`` bounds the sequence length, because each
    position has its own learned embedding.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_len: int,
        d_model: int = 32,
        num_heads: int = 2,
    ) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("num_classes", num_classes)
        check_positive_int("max_len", max_len)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)  # order enters only here
        self.self_attention = MultiHeadSelfAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Linear(2 * d_model, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes)

    def read(self, inputs: Tensor, lengths: object = None) -> tuple[Tensor, Tensor]:
        """inputs (B, T) -> logits (B, C) and self-attention weights (B, heads, T, T)."""
        check_token_ids("inputs", inputs, self.vocab_size)
        B, T = inputs.shape
        if T > self.max_len:
            raise ValueError(
                f"inputs have T={T} steps but the model was built for max_len={self.max_len}"
            )
        mask = _mask(lengths, inputs)
        positions = torch.arange(T, device=inputs.device)
        x = self.token_embedding(inputs) + self.position_embedding(positions)  # (B, T, d)
        attended, weights = self.self_attention(x, mask)  # (B, T, d), (B, heads, T, T)
        x = self.norm1(x + attended)
        x = self.norm2(x + self.feed_forward(x))  # (B, T, d)
        if mask is None:
            pooled = x.mean(dim=1)  # (B, d)
        else:  # average over real positions only
            pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)  # (B, d)
        return self.classifier(pooled), weights

    def forward(self, inputs: Tensor, lengths: object = None) -> Tensor:
        """inputs (B, T) -> logits (B, C)."""
        return self.read(inputs, lengths)[0]

"""course_lib.attention and course_lib.seq2seq: weights, masks, hand computations, gradients, a
reference check against torch.nn.MultiheadAttention, readable errors, and the chapter-06 models."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from course_lib.attention import (
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    MultiHeadSelfAttention,
    additive_scores,
    attend,
    dot_scores,
    lengths_to_mask,
    make_attention,
)
from course_lib.seq2seq import AttentiveReader, EncoderDecoder, SelfAttentionClassifier

torch.set_num_threads(1)  # tiny tensors: one thread is fastest (see benchmarks/README.md)

B, S, H = 3, 5, 4
LENGTHS = [5, 3, 1]


def inputs(dtype=torch.float32, device="cpu", tq=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (B, H) if tq is None else (B, tq, H)
    query = torch.randn(*shape, generator=generator, dtype=dtype).to(device)
    keys = torch.randn(B, S, H, generator=generator, dtype=dtype).to(device)
    values = torch.randn(B, S, 6, generator=generator, dtype=dtype).to(device)
    return query, keys, values


def all_kinds():
    torch.manual_seed(0)
    return {
        "additive": AdditiveAttention(H, H, 7),
        "dot": DotAttention(),
        "scaled": DotAttention(scaled=True),
        "general": GeneralAttention(H, H),
    }


@pytest.mark.parametrize("kind", ["additive", "dot", "scaled", "general"])
@pytest.mark.parametrize("tq", [None, 2])
def test_weights_sum_to_one_and_are_exactly_zero_at_padding(kind, tq):
    attention = all_kinds()[kind]
    query, keys, values = inputs(tq=tq)
    mask = lengths_to_mask(torch.tensor(LENGTHS), S)
    context, weights = attention(query, keys, values, mask=mask)
    rows = weights if tq is not None else weights.unsqueeze(1)  # (B, Tq, S)
    assert context.shape == ((B, 6) if tq is None else (B, tq, 6))
    assert weights.shape == ((B, S) if tq is None else (B, tq, S))
    assert_close(rows.sum(-1), torch.ones(B, rows.shape[1]))
    assert torch.all(rows[~mask.unsqueeze(1).expand_as(rows)] == 0.0)  # exactly zero
    assert torch.all(rows[mask.unsqueeze(1).expand_as(rows)] > 0.0)
    # lengths= is the same as the mask it describes
    context2, weights2 = attention(query, keys, values, lengths=LENGTHS)
    assert_close(context2, context)
    assert_close(weights2, weights)


def test_padding_does_not_change_the_context():
    attention = all_kinds()["additive"]
    query, keys, values = inputs()
    mask = lengths_to_mask(torch.tensor(LENGTHS), S)
    context, _ = attention(query, keys, values, mask=mask)
    keys2, values2 = keys.clone(), values.clone()
    keys2[~mask], values2[~mask] = 100.0, -100.0  # garbage in the padding
    assert_close(attention(query, keys2, values2, mask=mask)[0], context)


def test_dot_attention_by_hand():
    query = torch.tensor([[1.0, 0.0]])  # (1, 2)
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]]])  # (1, 3, 2)
    values = torch.tensor([[[1.0], [10.0], [100.0]]])  # (1, 3, 1)
    scores = [1.0, 0.0, 2.0]  # q . k_s
    total = sum(math.exp(e) for e in scores)
    expected_weights = torch.tensor([[math.exp(e) / total for e in scores]])
    context, weights = DotAttention()(query, keys, values)
    assert_close(weights, expected_weights)
    assert_close(context, expected_weights @ values[0])
    # masking the last position renormalises over the first two
    context, weights = DotAttention()(query, keys, values, mask=torch.tensor([[True, True, False]]))
    e, one = math.e, 1.0
    assert_close(weights, torch.tensor([[e / (e + one), one / (e + one), 0.0]]))
    assert_close(context, torch.tensor([[(e * 1 + 10) / (e + 1)]]))


def test_additive_attention_by_hand():
    attention = AdditiveAttention(query_size=1, key_size=1, hidden_size=1)
    with torch.no_grad():
        attention.query_proj.weight.fill_(2.0)  # W_q
        attention.key_proj.weight.fill_(-1.0)  # W_k
        attention.key_proj.bias.fill_(0.5)  # b
        attention.v.fill_(3.0)  # v
    query = torch.tensor([[0.25]])
    keys = torch.tensor([[[1.0], [0.0]]])
    scores = [3.0 * math.tanh(2.0 * 0.25 - 1.0 * k + 0.5) for k in (1.0, 0.0)]
    total = sum(math.exp(e) for e in scores)
    context, weights = attention(query, keys)
    assert_close(weights, torch.tensor([[math.exp(e) / total for e in scores]]))
    assert_close(context, weights @ keys[0])


def test_scaled_is_dot_over_sqrt_d():
    query, keys, values = inputs(tq=2)
    assert_close(dot_scores(query, keys, scaled=True), dot_scores(query, keys) / math.sqrt(H))
    _, weights = DotAttention(scaled=True)(query, keys, values)
    assert_close(weights, torch.softmax(query @ keys.transpose(1, 2) / math.sqrt(H), dim=-1))


def test_functions_match_the_modules():
    attention = all_kinds()["additive"]
    query, keys, values = inputs(tq=2)
    scores = additive_scores(attention.query_proj(query), attention.key_proj(keys), attention.v)
    context, weights = attend(scores, values)
    assert_close(attention(query, keys, values), (context, weights))
    projected = attention.project_keys(keys)
    assert_close(attention(query, keys, values, projected_keys=projected), (context, weights))


def test_make_attention():
    assert isinstance(make_attention("additive", 3, 5, 7), AdditiveAttention)
    assert make_attention("scaled", 4, 4).scaled
    with pytest.raises(ValueError, match="query_size == key_size"):
        make_attention("dot", 3, 4)
    with pytest.raises(ValueError, match="kind must be"):
        make_attention("cosine", 3, 3)


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_gradcheck_float64_with_mask(kind):
    attention = all_kinds()[kind].double()
    query, keys, values = (t.requires_grad_() for t in inputs(torch.float64, tq=2))
    mask = lengths_to_mask(torch.tensor(LENGTHS), S)
    assert torch.autograd.gradcheck(
        lambda q, k, v: attention(q, k, v, mask=mask), (query, keys, values), eps=1e-6, atol=1e-5
    )


def test_batch_of_one():
    attention = all_kinds()["additive"]
    query, keys, values = (t[:1] for t in inputs())
    context, weights = attention(query, keys, values, lengths=[2])
    assert context.shape == (1, 6) and weights.shape == (1, S)
    assert_close(weights[0, :2].sum(), torch.tensor(1.0))
    assert torch.all(weights[0, 2:] == 0)


# -- readable errors ------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    additive, dot = all_kinds()["additive"], DotAttention()
    query, keys, values = inputs()
    with pytest.raises(TypeError, match="query must be a torch.Tensor, got list"):
        dot([1.0], keys)
    with pytest.raises(
        ValueError, match=r"query must have shape \(B, Hq\) or \(B, Tq, Hq\), got \(4,\)"
    ):
        dot(query[0], keys)
    with pytest.raises(ValueError, match=r"keys must have shape \(B, S, features\)"):
        dot(query, keys[0])
    with pytest.raises(ValueError, match="query has batch size 2 but keys have 3"):
        dot(query[:2], keys)
    with pytest.raises(ValueError, match="values must have the keys' batch and source length"):
        dot(query, keys, values[:, :2])
    with pytest.raises(ValueError, match="same size, got query 3 and keys 4"):
        dot(query[:, :3], keys)
    with pytest.raises(ValueError, match="query must have 4 features, got 3"):
        additive(query[:, :3], keys)
    with pytest.raises(
        TypeError, match="keys must be a floating-point tensor, got dtype torch.int64"
    ):
        dot(query, keys.long())
    with pytest.raises(TypeError, match="keys has dtype torch.float64 but query has torch.float32"):
        dot(query, keys.double())
    with pytest.raises(
        TypeError, match=r"parameters are torch.float32; .* module.to\(torch.float64\)"
    ):
        additive(query.double(), keys.double())
    with pytest.raises(ValueError, match="query is on meta but the parameters are on cpu"):
        additive(query.to("meta"), keys.to("meta"))
    with pytest.raises(ValueError, match="keys is on meta but query is on cpu"):
        dot(query, keys.to("meta"))


def test_bad_masks_and_lengths_raise_clear_errors():
    dot = DotAttention()
    query, keys, _ = inputs()
    with pytest.raises(ValueError, match=r"mask is all False in row\(s\) \[1\]"):
        dot(query, keys, mask=torch.tensor([[True] * S, [False] * S, [True] * S]))
    with pytest.raises(TypeError, match="mask must be a bool tensor .* got dtype torch.int64"):
        dot(query, keys, mask=torch.ones(B, S, dtype=torch.long))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, S\) = \(3, 5\), got \(3, 4\)"):
        dot(query, keys, mask=torch.ones(B, S - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="every length must be between 1 and T=5"):
        dot(query, keys, lengths=[5, 0, 2])
    with pytest.raises(ValueError, match="every length must be between 1 and T=5"):
        dot(query, keys, lengths=[6, 1, 2])
    with pytest.raises(ValueError, match="pass mask or lengths, not both"):
        dot(query, keys, mask=torch.ones(B, S, dtype=torch.bool), lengths=[1, 1, 1])


# -- self-attention against torch.nn.MultiheadAttention -------------------------------------------


def test_multi_head_self_attention_matches_torch():
    torch.manual_seed(0)
    d_model, heads, T = 8, 2, 6
    ours = MultiHeadSelfAttention(d_model, heads)
    reference = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)
    with torch.no_grad():  # our packed q|k|v projection has torch's in_proj layout
        reference.in_proj_weight.copy_(ours.qkv_proj.weight)
        reference.in_proj_bias.copy_(ours.qkv_proj.bias)
        reference.out_proj.weight.copy_(ours.out_proj.weight)
        reference.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(2, T, d_model)
    mask = lengths_to_mask(torch.tensor([6, 4]), T)
    output, weights = ours(x, mask)
    expected, expected_weights = reference(
        x, x, x, key_padding_mask=~mask, average_attn_weights=False
    )
    assert_close(output, expected)
    assert_close(weights, expected_weights)
    assert torch.all(weights[1, :, :, 4:] == 0)


# -- the chapter-06 models ----------------------------------------------------------------------


@pytest.mark.parametrize("attention", [None, "additive", "dot"])
def test_encoder_decoder_shapes_and_teacher_forcing(attention):
    torch.manual_seed(0)
    model = EncoderDecoder(vocab_size=7, embedding_size=4, hidden_size=6, attention=attention)
    source = torch.randint(0, 7, (2, 5))
    target = torch.randint(0, 7, (2, 4))
    assert model(source, target).shape == (2, 4, 7)  # teacher forcing
    assert model(source).shape == (2, 5, 7)  # greedy, as many steps as the source
    tokens, weights = model.generate(source, steps=4)
    assert tokens.shape == (2, 4)
    assert (weights is None) == (attention is None)
    if weights is not None:
        assert weights.shape == (2, 4, 5)
        assert_close(weights.sum(-1), torch.ones(2, 4))
    # feeding the greedy tokens as targets reproduces the greedy logits exactly
    assert_close(model(source, tokens), model(source)[:, :4])


def test_encoder_decoder_ignores_padding():
    torch.manual_seed(0)
    model = EncoderDecoder(vocab_size=7, embedding_size=4, hidden_size=6, output_steps=3)
    source = torch.randint(1, 7, (2, 5))
    lengths = torch.tensor([5, 3])
    logits = model(source, lengths=lengths)
    padded = source.clone()
    padded[1, 3:] = 0
    assert logits.shape == (2, 3, 7)
    assert_close(model(padded, lengths=lengths), logits)
    _, weights = model.generate(source, lengths=lengths)
    assert torch.all(weights[1, :, 3:] == 0)


def test_encoder_decoder_bad_inputs():
    model = EncoderDecoder(vocab_size=7)
    with pytest.raises(TypeError, match="source must hold integer token ids"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"source must hold ids in 0..6, got min 0 and max 7"):
        model(torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match="target has batch size 1 but source has 2"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="attention must be None or one of"):
        EncoderDecoder(vocab_size=7, attention="cosine")


@pytest.mark.parametrize("attention", ["additive", "scaled"])
def test_attentive_reader(attention):
    torch.manual_seed(0)
    model = AttentiveReader(
        vocab_size=9, num_classes=4, embedding_size=4, hidden_size=5, attention=attention
    )
    tokens = torch.randint(1, 9, (3, 6))
    lengths = torch.tensor([6, 2, 4])
    logits, weights = model.read(tokens, lengths)
    assert logits.shape == (3, 4) and weights.shape == (3, 6)
    assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[1, 2:] == 0)
    padded = tokens.clone()
    padded[1, 2:] = 0
    assert_close(model(padded, lengths=lengths), logits)


def test_self_attention_classifier():
    torch.manual_seed(0)
    model = SelfAttentionClassifier(vocab_size=9, num_classes=4, max_len=8, d_model=8, num_heads=2)
    tokens = torch.randint(1, 9, (3, 6))
    lengths = torch.tensor([6, 2, 4])
    logits, weights = model.read(tokens, lengths)
    assert logits.shape == (3, 4) and weights.shape == (3, 2, 6, 6)
    padded = tokens.clone()
    padded[1, 2:] = 0
    assert_close(model(padded, lengths=lengths), logits)
    with pytest.raises(ValueError, match="T=9 steps but the model was built for max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_models_learn_a_little():
    """A few steps of Adam lower the loss of each model (a smoke test of the gradient path)."""
    torch.manual_seed(0)
    tokens = torch.randint(1, 6, (16, 5))
    labels = tokens[:, 0] % 3
    for model in (
        AttentiveReader(6, 3, embedding_size=4, hidden_size=6),
        SelfAttentionClassifier(6, 3, max_len=5, d_model=8, num_heads=2),
    ):
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        losses = []
        for _ in range(5):
            loss = torch.nn.functional.cross_entropy(model(tokens), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0]


# -- CUDA -----------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("kind", ["additive", "dot", "scaled", "general"])
def test_cuda_matches_cpu(kind):
    attention = all_kinds()[kind]
    query, keys, values = inputs(tq=2)
    mask = lengths_to_mask(torch.tensor(LENGTHS), S)
    expected = attention(query, keys, values, mask=mask)
    gpu = attention.to("cuda")
    context, weights = gpu(query.cuda(), keys.cuda(), values.cuda(), mask=mask.cuda())
    assert context.is_cuda and weights.is_cuda
    assert_close(context.cpu(), expected[0], atol=1e-5, rtol=1e-4)
    assert_close(weights.cpu(), expected[1], atol=1e-5, rtol=1e-4)
    _, weights = gpu(query.cuda(), keys.cuda(), values.cuda(), lengths=LENGTHS)
    assert torch.all(weights.cpu()[~mask.unsqueeze(1).expand_as(weights)] == 0)
    with pytest.raises(ValueError, match="mask is on cpu but keys are on cuda"):
        gpu(query.cuda(), keys.cuda(), values.cuda(), mask=mask)

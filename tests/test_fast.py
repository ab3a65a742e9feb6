"""course_lib.speed.graphed: CUDA-graph replay of a layer gives what the layer itself gives."""

import copy

import pytest
import torch

from course_lib.layers import GRU, LSTM, RNN, PeepholeLSTM
from course_lib.speed.graphed import graphed

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "peephole": PeepholeLSTM}
T, B, I, H = 7, 4, 5, 6


def flat(result):
    output, hidden = result
    return (output, *(hidden if isinstance(hidden, tuple) else (hidden,)))


def test_refuses_the_cpu_with_a_reason():
    layer = LSTM(I, H)
    with pytest.raises(ValueError, match="needs the layer and example on a CUDA device"):
        graphed(layer, torch.randn(T, B, I))


def test_bad_arguments_name_themselves():
    layer = LSTM(I, H)
    with pytest.raises(TypeError, match="example must be a torch.Tensor"):
        graphed(layer, [[0.0] * I])
    with pytest.raises(ValueError, match="warmup must be a positive int"):
        graphed(layer, torch.randn(T, B, I), warmup=0)
    with pytest.raises(TypeError, match="example has dtype torch.float64"):
        graphed(layer, torch.randn(T, B, I, dtype=torch.float64))


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("kind", LAYERS)
def test_replay_matches_the_layer_forward_and_backward(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind](I, H, num_layers=2, bidirectional=True).cuda()
    reference = copy.deepcopy(layer)
    example = torch.randn(T, B, I, device="cuda", requires_grad=True)
    run = graphed(layer, example)
    for _ in range(2):  # new inputs each time: the replay reads x, not the example
        layer.zero_grad(set_to_none=True), reference.zero_grad(set_to_none=True)
        x = torch.randn(T, B, I, device="cuda")
        x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours, ref = flat(run(x_ours)), flat(reference(x_ref))
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b)
        sum(o.square().sum() for o in ours).backward()
        sum(r.square().sum() for r in ref).backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad)
        for (name, p), q in zip(layer.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p.grad, q.grad, msg=name)


@needs_cuda
@pytest.mark.cuda
def test_training_steps_match_eager_training():
    torch.manual_seed(0)
    layer = LSTM(I, H).cuda()
    reference = copy.deepcopy(layer)
    run = graphed(layer, torch.randn(T, B, I, device="cuda"))
    optimisers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (layer, reference)]
    for _ in range(3):
        x = torch.randn(T, B, I, device="cuda")
        for forward, optimiser in zip((run, reference), optimisers):
            optimiser.zero_grad()
            output, _ = forward(x)
            output.square().mean().backward()
            optimiser.step()
    for p, q in zip(layer.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


@needs_cuda
@pytest.mark.cuda
def test_replay_refuses_what_the_graph_cannot_take():
    layer = GRU(I, H).cuda()
    run = graphed(layer, torch.randn(T, B, I, device="cuda"))
    with pytest.raises(ValueError, match=r"x must have shape \(7, 4, 5\), got \(7, 1, 5\)"):
        run(torch.randn(T, 1, I, device="cuda"))  # would broadcast silently inside the graph
    with pytest.raises(ValueError, match="requires_grad is True but the graph was recorded"):
        run(torch.randn(T, B, I, device="cuda", requires_grad=True))
    layer.eval()
    with pytest.raises(ValueError, match="recorded in training mode"):
        run(torch.randn(T, B, I, device="cuda"))
    assert layer.forward.__func__ is GRU.forward  # the layer itself was not rewritten

"""PyTorch's own test inputs for its recurrent modules, run against course_lib.

``torch.testing._internal.common_modules.module_db`` holds, for each torch.nn module, the
constructor arguments and forward inputs that PyTorch's own module tests use. For nn.RNN,
nn.LSTM, nn.GRU and the three cells (torch 2.13): every bias / batch_first / bidirectional
combination with two layers, unbatched inputs with and without an initial state, packed
sequences (RNN and GRU), ``proj_size=2`` (LSTM), ``nonlinearity='relu'`` (RNN, RNNCell).

Each sample builds the torch.nn module and ours from the same arguments, copies torch.nn's
state dict into ours, and compares outputs, final states and the gradients of the inputs and of
every parameter, in float32 and float64, in training and evaluation mode. PeepholeLSTM (its
peepholes at zero) must give what nn.LSTM gives on nn.LSTM's samples.

The error samples: every constructor argument that torch.nn refuses, ours refuses with the same
exception type. For bad forward inputs torch.nn raises RuntimeError from its kernels in places;
ours raises TypeError or ValueError naming the argument (checked here too).
"""

from __future__ import annotations

import pytest
import torch
from helpers import assert_same_results, copy_weights
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from course_lib import cells, layers


def _import_module_db():
    """torch's module_db. Importing torch's test utilities freezes ``torch.backends``' global
    flags (PyTorch's own suite wants only ``with torch.backends.cudnn.flags(...)``); unfreeze
    them again so that conftest.py and the other test files can set them as before."""
    frozen = torch.backends.flags_frozen()
    from torch.testing._internal import common_modules

    if not frozen:
        torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = True
    assert torch.backends.flags_frozen() == frozen
    return common_modules.ModuleErrorEnum, common_modules.module_db


ModuleErrorEnum, module_db = _import_module_db()

OURS: dict[str, list[type[nn.Module]]] = {
    "RNN": [layers.RNN],
    "GRU": [layers.GRU],
    "LSTM": [layers.LSTM, layers.PeepholeLSTM],
    "RNNCell": [cells.RNNCell],
    "GRUCell": [cells.GRUCell],
    "LSTMCell": [cells.LSTMCell, cells.PeepholeLSTMCell],
}
INFOS = {
    info.module_cls.__name__: info for info in module_db if info.module_cls in vars(nn).values()
}
INFOS = {name: INFOS[name] for name in OURS}
DTYPES = {"f32": torch.float32, "f64": torch.float64}
# module_db's inputs are uniform in [-9, 9], so gradients reach about 10 and float32's rounding
# (about 1e-7 relative per operation) adds up to about 1e-5 over the two layers and their BPTT.
# In float64 the two agree to the last few bits.
TOLERANCES = {"f32": {"rtol": 1e-4, "atol": 1e-5}, "f64": {"rtol": 1e-12, "atol": 1e-12}}


def samples(name: str, dtype: torch.dtype, training: bool) -> list:
    info = INFOS[name]
    return list(
        info.module_inputs_func(
            info, device="cpu", dtype=dtype, requires_grad=True, training=training,
            with_packed_sequence=True,
        )
    )  # fmt: skip


def _cases() -> list:
    cases = []
    for name, ours_classes in OURS.items():
        count = len(samples(name, torch.float64, True))
        for ours_class in ours_classes:
            for dtype_id in DTYPES:
                for mode in ("train", "eval"):
                    for index in range(count):
                        case_id = f"{ours_class.__name__}-{dtype_id}-{mode}-{index}"
                        cases.append(
                            pytest.param(name, ours_class, dtype_id, mode, index, id=case_id)
                        )
    return cases


def _grad_inputs(args: tuple) -> tuple[torch.Tensor, ...]:
    """The forward inputs that autograd can differentiate by (a packed sequence: its data)."""
    found = []
    for arg in args:
        if isinstance(arg, PackedSequence):
            arg = arg.data
        parts = arg if isinstance(arg, (tuple, list)) else (arg,)
        found.extend(p for p in parts if isinstance(p, torch.Tensor) and p.requires_grad)
    return tuple(found)


@pytest.mark.parametrize("name, ours_class, dtype_id, mode, index", _cases())
def test_module_db_sample_agrees_with_torch(name, ours_class, dtype_id, mode, index):
    dtype, training = DTYPES[dtype_id], mode == "train"
    torch.manual_seed(index)
    sample = samples(name, dtype, training)[index]
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    reference = INFOS[name].module_cls(*args, **kwargs).to(dtype)
    ours = ours_class(*args, **kwargs).to(dtype)
    copy_weights(ours, reference)
    reference.train(training)
    ours.train(training)
    forward = sample.forward_input.args
    assert not sample.forward_input.kwargs
    assert_same_results(ours, reference, forward, _grad_inputs(forward), **TOLERANCES[dtype_id])


def test_the_samples_cover_what_the_issue_names():
    """Guard against a torch release that thins out module_db: packed, proj_size, relu."""
    lstm = samples("LSTM", torch.float64, True)
    assert any(s.constructor_input.kwargs.get("proj_size", 0) > 0 for s in lstm)
    for name in ("RNN", "GRU"):
        assert any(
            isinstance(s.forward_input.args[0], PackedSequence)
            for s in samples(name, torch.float64, True)
        )
    counts = {name: len(samples(name, torch.float64, True)) for name in OURS}
    assert counts == {"RNN": 64, "GRU": 32, "LSTM": 32, "RNNCell": 3, "GRUCell": 2, "LSTMCell": 2}


def _error_cases() -> list:
    cases = []
    for name, ours_classes in OURS.items():
        info = INFOS[name]
        errors = info.module_error_inputs_func(
            info, device="cpu", dtype=torch.float32, requires_grad=False, training=True
        )
        for index, error in enumerate(errors):
            for ours_class in ours_classes:
                case_id = f"{ours_class.__name__}-{error.error_on.name}-{index}"
                cases.append(pytest.param(ours_class, error, id=case_id))
    return cases


@pytest.mark.parametrize("ours_class, error", _error_cases())
def test_module_db_error_sample(ours_class, error):
    sample = error.module_error_input
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    if error.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
        with pytest.raises(error.error_type):
            ours_class(*args, **kwargs)
        return
    with pytest.raises((TypeError, ValueError)) as raised:
        # Two of torch's samples build RNNCell(10, 20, "relu"): the string lands in ``bias``,
        # which torch.nn accepts as True. We refuse it there, with a TypeError naming bias.
        module = ours_class(*args, **kwargs)
        module(*sample.forward_input.args)
    # Our message names the argument: x (torch's "input"), hx or hx[0]/hx[1], or bias.
    assert str(raised.value).startswith(("x ", "hx", "bias ")), str(raised.value)

"""TrainingState (tools/benchmark.py restores it before every timed step): after any number of
steps, restoring gives back the weights, buffers and optimizer state it copied, and the next step
equals a step of an untouched copy of the model (the copy is not aliased by the optimizer)."""
import copy

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from vkd_mmdet.testing.benchmark import TrainingState


def _sgd(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                        weight_decay=1e-2))


def _step(model, optim, x):
    optim.update_params(model(x).pow(2).sum())


def test_restore_repeats_the_same_step():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    optim = _sgd(model)
    _step(model, optim, x)  # momentum buffers exist from here
    state = TrainingState(model, [optim])
    reference = copy.deepcopy(model)
    reference_optim = _sgd(reference)
    reference_optim.optimizer.load_state_dict(copy.deepcopy(optim.optimizer.state_dict()))
    _step(reference, reference_optim, x)  # one step from the copied state, independently

    for _ in range(3):
        _step(model, optim, x)
    model(x).sum().backward()  # gradients left behind (as by the losses-only step)
    state.restore()
    assert all(p.grad is None for p in model.parameters())
    _step(model, optim, x)
    for got, expected in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # the stored state survived the step above (the optimizer works on copies of it)
    state.restore()
    _step(model, optim, x)
    for got, expected in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    momentum = [optim.optimizer.state[p]['momentum_buffer'] for p in model.parameters()]
    expected = [reference_optim.optimizer.state[p]['momentum_buffer']
                for p in reference.parameters()]
    for got, want in zip(momentum, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)

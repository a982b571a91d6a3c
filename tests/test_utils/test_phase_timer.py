"""vkd_mmdet.utils.phase_timer: exclusive times of nested phases and of backward nodes, on a
fake clock that only moves where the test says (exact expectations, no sleeps)."""
import pytest
import torch

from vkd_mmdet.utils.phase_timer import PhaseTimer, graph_nodes

CPU = torch.device('cpu')


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Delay(torch.autograd.Function):
    """Identity that advances ``clock`` by ``forward_s`` in its forward, ``backward_s`` in its
    backward: the cost of a made-up operation."""

    @staticmethod
    def forward(ctx, x, clock, forward_s, backward_s):
        clock.now += forward_s
        ctx.clock, ctx.backward_s = clock, backward_s
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.clock.now += ctx.backward_s
        return grad, None, None, None


def test_nested_phases_get_their_exclusive_time_and_add_up_to_the_wall_time():
    clock = Clock()
    timer = PhaseTimer(CPU, clock)
    with timer.phase('step'):
        clock.now += 1.0
        with timer.phase('inner'):
            clock.now += 2.0
            with timer.phase('innermost'):
                clock.now += 4.0
        with timer.phase('inner'):  # a second call adds up
            clock.now += 8.0
        clock.now += 16.0
    assert dict(timer.totals) == {'step': 17.0, 'inner': 10.0, 'innermost': 4.0}
    assert dict(timer.calls) == {'step': 1, 'inner': 2, 'innermost': 1}
    assert sum(timer.totals.values()) == clock.now


def test_a_wrapped_function_is_a_phase_and_keeps_its_result():
    clock = Clock()
    timer = PhaseTimer(CPU, clock)

    def work(x, y=1):
        clock.now += 0.5
        return x + y

    assert timer.wrap(work, 'work')(2, y=3) == 5
    assert timer.totals['work'] == 0.5


def test_closing_another_phase_than_the_innermost_is_an_error():
    timer = PhaseTimer(CPU, Clock())
    timer.start('outer')
    timer.start('inner')
    with pytest.raises(RuntimeError, match="closing 'outer'.*'inner'"):
        timer.stop('outer')
    with pytest.raises(RuntimeError, match='still open'):
        timer.reset()


def test_backward_nodes_are_timed_in_their_groups_and_out_of_the_enclosing_phase():
    # w -> Delay(bwd 1) -> [block boundary] -> sin -> Delay(bwd 2) -> Delay(bwd 4) -> loss,
    # plus a branch that is not timed: Delay(bwd 8) from w straight to the loss.
    clock = Clock()
    timer = PhaseTimer(CPU, clock)
    w = torch.randn(3, requires_grad=True)
    inner = Delay.apply(w * 2, clock, 0.0, 1.0)
    inner_nodes = graph_nodes([inner])
    outer = Delay.apply(Delay.apply(inner.sin(), clock, 0.0, 2.0), clock, 0.0, 4.0)
    outer_nodes = graph_nodes([outer], stop_at=[inner.grad_fn])
    untimed = Delay.apply(w, clock, 0.0, 8.0)
    assert {type(node).__name__ for node in inner_nodes} == {
        'DelayBackward', 'MulBackward0', 'AccumulateGrad'}
    assert sorted(type(node).__name__ for node in outer_nodes) == [
        'DelayBackward', 'DelayBackward', 'SinBackward0']
    timer.time_backward(inner_nodes, 'inner')
    timer.time_backward(outer_nodes, 'outer')
    with timer.phase('backward'):
        clock.now += 16.0
        (outer.sum() + untimed.sum()).backward()
    assert dict(timer.totals) == {'inner': 1.0, 'outer': 6.0, 'backward': 24.0}
    assert w.grad is not None


def test_removed_backward_hooks_time_nothing():
    clock = Clock()
    timer = PhaseTimer(CPU, clock)
    w = torch.randn(3, requires_grad=True)
    out = Delay.apply(w, clock, 0.0, 1.0)
    for handle in timer.time_backward(graph_nodes([out]), 'block'):
        handle.remove()
    out.sum().backward()
    assert dict(timer.totals) == {}

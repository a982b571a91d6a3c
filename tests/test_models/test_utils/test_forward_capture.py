"""capture_outputs / capture_inputs: exactly what each call returned or received, in call order,
and no hook left behind, also when the block raises."""
import pytest
import torch
import torch.nn as nn

from vkd_mmdet.models.utils import capture_inputs, capture_outputs


class _Scale(nn.Module):
    def forward(self, x, factor):
        return x * factor


def _no_hooks(module: nn.Module) -> bool:
    return not module._forward_hooks and not module._forward_pre_hooks


def test_outputs_are_the_very_tensors_each_call_returned():
    module = _Scale()
    x = torch.randn(2, 3, requires_grad=True)
    with capture_outputs(module) as outputs:
        returned = [module(x, 2.0), module(x, 3.0)]
    module(x, 7.0)  # after the block: not recorded
    assert len(outputs) == 2
    assert all(got is ret for got, ret in zip(outputs, returned))
    torch.testing.assert_close(outputs[1], x * 3.0)
    assert outputs[0].grad_fn is not None  # the graph is kept: losses can back-propagate
    assert _no_hooks(module)


def test_inputs_are_the_chosen_positional_argument_before_the_forward_runs():
    module = _Scale()
    x, y = torch.randn(2, 3), torch.randn(4)
    with capture_inputs(module) as first, capture_inputs(module, index=1) as second:
        module(x, 2.0)
        module(y, 3.0)
    assert first[0] is x and first[1] is y and len(first) == 2
    assert second == [2.0, 3.0]
    assert _no_hooks(module)


@pytest.mark.parametrize('capture', [capture_outputs, capture_inputs])
def test_hook_is_removed_when_the_block_raises(capture):
    module = _Scale()
    with pytest.raises(RuntimeError, match='inside the block'), capture(module) as seen:
        module(torch.ones(1), 2.0)
        raise RuntimeError('inside the block')
    assert len(seen) == 1
    assert _no_hooks(module)
    module(torch.ones(1), 2.0)
    assert len(seen) == 1


def test_nested_captures_of_one_module_each_see_their_own_calls():
    module = nn.Linear(3, 2)
    x = torch.randn(1, 3)
    with capture_outputs(module) as outer:
        module(x)
        with capture_outputs(module) as inner:
            module(x)
    assert (len(outer), len(inner)) == (2, 1)
    assert outer[1] is inner[0]
    assert _no_hooks(module)

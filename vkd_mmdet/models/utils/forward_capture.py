"""Record what a module returns (or receives) during one block of code, through a forward hook.

The distillers read intermediate results of an upstream model this way (the student's neck
outputs, the input of a box head's ``fc_cls``) without a second forward pass and without editing
the model: the hook exists only inside the ``with`` block.
"""
import contextlib
from typing import Any, Iterator, List

import torch.nn as nn


@contextlib.contextmanager
def capture_outputs(module: nn.Module) -> Iterator[List[Any]]:
    """Inside the context, collect the output of every call of ``module``, in call order.

    The list holds the outputs themselves (no copy, autograd graph kept). The forward hook is
    removed on exit, also when the block raises.

    Example:
        >>> conv = nn.Conv2d(3, 8, 1)
        >>> with capture_outputs(conv) as outputs:
        ...     y = conv(torch.randn(2, 3, 4, 4))
        >>> len(outputs) == 1 and outputs[0] is y
        True
    """
    outputs: List[Any] = []
    # A RemovableHandle is a context manager: leaving the block removes the hook.
    with module.register_forward_hook(lambda _module, _args, output: outputs.append(output)):
        yield outputs


@contextlib.contextmanager
def capture_inputs(module: nn.Module, index: int = 0) -> Iterator[List[Any]]:
    """Inside the context, collect positional argument ``index`` of every call of ``module``.

    A forward pre-hook: what the module receives, before its forward runs (e.g. the box-head
    embedding fed to ``fc_cls``). Removed on exit, also when the block raises.
    """
    inputs: List[Any] = []
    with module.register_forward_pre_hook(lambda _module, args: inputs.append(args[index])):
        yield inputs

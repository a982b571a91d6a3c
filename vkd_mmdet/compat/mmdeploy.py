"""mmdeploy compatibility: the ``torch.onnx`` mmdeploy 1.3.1 was written for, for one block of code.

Checked with mmdeploy 1.3.1 on torch 2.1.2 and 2.14.1 (the two pinned stacks,
``requirements/pinned*.txt``); ``tests/test_compat/test_mmdeploy.py`` and ``tests/test_deploy``
check it against the installed ones.

Since torch 2.9, ``torch.onnx.export(..., dynamo=True)`` is the default: the model is traced with
``torch.export`` and translated by onnxscript. mmdeploy 1.3.1 (its last release) is written for
the TorchScript exporter: its rewriters patch the functions that exporter traces, its symbolic
functions emit the graph's ops, and it calls ``torch.onnx.export`` without a ``dynamo`` argument
and with ``dynamic_axes`` (the dynamo path then fails: "Detected mismatch between the structure
of ``inputs`` and ``dynamic_shapes``", and it needs onnxscript). torch still ships the TorchScript
exporter behind ``dynamo=False``. One more piece is gone: ``torch.onnx.symbolic_opset9._cast_Long``,
which mmdeploy's RoIAlign symbolic (two-stage detectors, ONNX Runtime) imports.

:func:`torchscript_onnx_export` passes ``dynamo=False`` by default and puts back the cast helper
while the conversion runs, and restores both afterwards: nothing outside the block sees a change,
and nothing installed is edited.
"""
import contextlib
import functools
import inspect
from typing import Any, Iterator

import torch
import torch.onnx.symbolic_opset9 as symbolic_opset9

#: The helper torch < 2.9 had in ``torch.onnx.symbolic_opset9`` and mmdeploy imports from there.
_CAST_LONG = '_cast_Long'


def exports_with_dynamo_by_default() -> bool:
    """Whether this torch's ``torch.onnx.export`` has ``dynamo=True`` as its default (>= 2.9)."""
    parameter = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return parameter is not None and parameter.default is True


def _cast_long(g: Any, input: Any, non_blocking: bool = False) -> Any:
    """ONNX ``Cast`` of ``input`` to int64 (the TorchScript graph ``g``): old torch's
    ``symbolic_opset9._cast_Long`` (``non_blocking`` has no meaning in a graph)."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """Within the block, ``torch.onnx.export`` defaults to the TorchScript exporter.

    A call that passes ``dynamo`` itself keeps its choice. ``torch.onnx.symbolic_opset9``
    has ``_cast_Long`` when this torch lacks it. On a torch whose exporter already defaults to
    TorchScript (< 2.9: ``dynamo`` absent or False) and that has the helper, nothing is patched.
    Everything is restored on leaving the block, also when it raises.

    Example:
        >>> with torchscript_onnx_export():
        ...     mmdeploy.apis.torch2onnx(img, work_dir, 'end2end.onnx', deploy_cfg, model_cfg,
        ...                              checkpoint, device='cpu')
    """
    with contextlib.ExitStack() as restore:
        if exports_with_dynamo_by_default():
            original = torch.onnx.export

            @functools.wraps(original)
            def export(*args: Any, **kwargs: Any) -> Any:
                kwargs.setdefault('dynamo', False)
                return original(*args, **kwargs)

            torch.onnx.export = export
            restore.callback(setattr, torch.onnx, 'export', original)
        if not hasattr(symbolic_opset9, _CAST_LONG):
            setattr(symbolic_opset9, _CAST_LONG, _cast_long)
            restore.callback(delattr, symbolic_opset9, _CAST_LONG)
        yield

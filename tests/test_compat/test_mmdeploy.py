"""torchscript_onnx_export: inside the block torch.onnx.export runs the TorchScript exporter (what
mmdeploy 1.3.1 needs on torch >= 2.9) and symbolic_opset9 has ``_cast_Long``; outside, torch is as
it was."""
import inspect

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.onnx.symbolic_opset9 as symbolic_opset9

from vkd_mmdet.compat.mmdeploy import (
    exports_with_dynamo_by_default,
    torchscript_onnx_export,
)


class _Recorder:
    """Stands in for ``torch.onnx.export``, with the given default for ``dynamo``."""

    def __init__(self, dynamo_default):
        self.calls = []
        if dynamo_default is None:  # torch < 2.5: no such argument

            def export(model, args, f=None, **kwargs):
                self.calls.append(kwargs)
        else:

            def export(model, args, f=None, *, dynamo=dynamo_default, **kwargs):
                self.calls.append(dict(kwargs, dynamo=dynamo))
        self.export = export


@pytest.mark.parametrize('dynamo_default', [True, False, None])
def test_only_a_dynamo_default_is_patched_and_an_explicit_choice_wins(monkeypatch,
                                                                      dynamo_default):
    recorder = _Recorder(dynamo_default)
    monkeypatch.setattr(torch.onnx, 'export', recorder.export)
    assert exports_with_dynamo_by_default() is (dynamo_default is True)
    with torchscript_onnx_export():
        patched = torch.onnx.export is not recorder.export
        torch.onnx.export(None, ())
        if dynamo_default is not None:
            torch.onnx.export(None, (), dynamo=True)
    assert patched is (dynamo_default is True)
    assert torch.onnx.export is recorder.export
    if dynamo_default is True:
        assert [call['dynamo'] for call in recorder.calls] == [False, True]
        assert inspect.signature(recorder.export) == inspect.signature(torch.onnx.export)


def test_everything_is_restored_when_the_block_raises():
    export, had_cast = torch.onnx.export, getattr(symbolic_opset9, '_cast_Long', None)
    with pytest.raises(RuntimeError, match='conversion failed'), torchscript_onnx_export():
        assert callable(symbolic_opset9._cast_Long)
        raise RuntimeError('conversion failed')
    assert torch.onnx.export is export
    assert getattr(symbolic_opset9, '_cast_Long', None) is had_cast


class _ToLong(torch.autograd.Function):
    """A op whose ONNX symbolic is ``symbolic_opset9._cast_Long``, as mmdeploy's RoIAlign uses it
    (imported at export time)."""

    @staticmethod
    def forward(ctx, x):
        return x.long()

    @staticmethod
    def symbolic(g, x):
        from torch.onnx.symbolic_opset9 import _cast_Long
        return _cast_Long(g, x, False)


class _Net(torch.nn.Module):

    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1) * 3, _ToLong.apply(x)


def test_export_with_dynamic_axes_runs_in_onnx_runtime(tmp_path):
    """The call mmdeploy makes (``dynamic_axes``, no ``dynamo``): a model ONNX Runtime runs at
    other shapes than the traced one, equal to torch, the cast an int64 ``Cast``."""
    path = str(tmp_path / 'net.onnx')
    with torchscript_onnx_export():
        torch.onnx.export(_Net(), (torch.rand(1, 2, 4, 4) * 5,), path, opset_version=11,
                          input_names=['input'], output_names=['pooled', 'long'],
                          dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'}})
    casts = [node for node in onnx.load(path).graph.node if node.op_type == 'Cast']
    assert [attr.i for node in casts for attr in node.attribute if attr.name == 'to'] == \
        [onnx.TensorProto.INT64]
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in [(3, 2, 5, 7), (1, 2, 8, 2)]:
        x = torch.rand(*shape) * 5
        pooled, as_long = session.run(None, {'input': x.numpy()})
        expected_pooled, expected_long = _Net()(x)
        np.testing.assert_allclose(pooled, expected_pooled.numpy(), rtol=1e-6, atol=1e-6)
        assert as_long.dtype == np.int64
        np.testing.assert_array_equal(as_long, expected_long.numpy())

"""Under EMAHook (RTMDet's recipe) the distiller trains and the export is the EMA student."""
import torch
from mmengine.hooks import EMAHook

from .conftest import NO_VAL, probe_config, tool_main

# RTMDet's hook with a large momentum, so that 4 iterations leave EMA and live weights apart.
HOOKS = ("[dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.5, update_buffers=True, "
         "priority=49), dict(type='ExportStudentHook')]")


def test_exported_student_holds_the_ema_weights(tiny_run, tmp_path):
    work_dir = tmp_path / 'work'
    runner = tool_main('train')([probe_config(tiny_run, 'ema_export', HOOKS), '--work-dir',
                                 str(work_dir), '--cfg-options', *NO_VAL])
    assert runner.iter == 4
    ema_hook = next(hook for hook in runner.hooks if isinstance(hook, EMAHook))
    # the averaged copy shares the frozen teacher instead of holding a second one
    assert ema_hook.ema_model.module.teacher is runner.model.teacher
    ema = ema_hook.ema_model.module.student.state_dict()
    live = runner.model.student.state_dict()
    exported = torch.load(work_dir / 'student' / 'iter_4_student.pth',
                          weights_only=True)['state_dict']
    assert exported.keys() == ema.keys()
    for key, value in ema.items():
        assert torch.equal(exported[key], value), key
    moved = [key for key, value in live.items()
             if value.dtype.is_floating_point and not torch.equal(value, ema[key])]
    assert any(key.startswith('backbone.') for key in moved)

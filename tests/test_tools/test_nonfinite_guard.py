"""The non-finite guard: an Inf in one level's teacher feature skips that iteration's optimizer
step exactly as if the batch had been skipped; a NaN every step stops the run with the term's
name."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from .conftest import NO_VAL, probe_config, tool_main

# BatchNorm statistics move during training (mmdet's RetinaNet freezes them), so that the test
# sees whether a skipped step leaves them alone.
OPTIONS = ['model.student.backbone.norm_eval=False',
           'model.student.backbone.frozen_stages=-1', *NO_VAL]


def _run(config: str, work_dir, *options: str):
    return tool_main('train')([config, '--work-dir', str(work_dir), '--cfg-options', *OPTIONS,
                               *options])


def _state(work_dir) -> dict:
    return torch.load(work_dir / 'iter_4.pth', map_location='cpu', weights_only=False)


def test_inf_in_a_teacher_level_skips_the_step_like_skipping_the_batch(tiny_run, tmp_path,
                                                                      one_thread):
    # Reference, written without the guard: iteration 2 runs forward and backward, but its
    # optimizer step is a no-op and the buffers are put back afterwards.
    reference = probe_config(tiny_run, 'skip_step_1', "[dict(type='SkipStepHook', at_iter=1)]")
    _run(reference, tmp_path / 'reference', 'experiment_name=guard_reference')
    poisoned = probe_config(tiny_run, 'inf_at_1',
                            "[dict(type='InjectInfHook', at_iters=[1], level=1)]")
    runner = _run(poisoned, tmp_path / 'guarded', 'experiment_name=guard_inf')
    plain = probe_config(tiny_run, 'plain', '[]')
    _run(plain, tmp_path / 'plain', 'experiment_name=guard_plain')

    guarded, expected, trained = (_state(tmp_path / name)
                                  for name in ('guarded', 'reference', 'plain'))
    model = runner.model
    assert model.nonfinite_guard.skipped == 1
    # Parameters and BatchNorm statistics, then the SGD momentum buffers.
    bn_stats = [k for k in expected['state_dict'] if k.endswith('running_mean')]
    assert bn_stats and any(not torch.equal(expected['state_dict'][k], trained['state_dict'][k])
                            for k in bn_stats)
    for key, value in expected['state_dict'].items():
        torch.testing.assert_close(guarded['state_dict'][key], value, rtol=0, atol=0, msg=key)
    for index, state in expected['optimizer']['state'].items():
        torch.testing.assert_close(guarded['optimizer']['state'][index]['momentum_buffer'],
                                   state['momentum_buffer'], rtol=0, atol=0)
    # Not vacuous: training on that batch gives other weights.
    assert any(not torch.equal(trained['state_dict'][k], v)
               for k, v in expected['state_dict'].items())

    # Counted and logged with the loss's name and level (stride 16: p4, the level-1 pair).
    log = (tmp_path / 'guarded').glob('*/*.log')
    text = next(log).read_text()
    assert 'optimizer step skipped at iteration 2' in text
    assert 'loss_vkd_p4 (distillation term vkd, level p4)' in text
    iterations = [line for line in text.splitlines() if 'Iter(train)' in line]
    assert ['nonfinite_skips: 1' in line for line in iterations] == [False, True, True, True]


def test_consecutive_non_finite_steps_stop_the_run_naming_the_term(tiny_run, tmp_path,
                                                                   one_thread):
    poisoned = probe_config(tiny_run, 'inf_always',
                            "[dict(type='InjectInfHook', at_iters=[0, 1, 2, 3], level=0)]")
    with pytest.raises(RuntimeError) as error:
        _run(poisoned, tmp_path / 'work', 'model.nonfinite_guard.max_consecutive_skips=2',
             'experiment_name=guard_stop')
    message = str(error.value)
    assert '2 optimizer steps in a row skipped' in message
    assert 'model.nonfinite_guard.max_consecutive_skips=2' in message
    assert 'loss_vkd_p3 (distillation term vkd, level p3)' in message
    assert 'model.distill_losses.vkd.loss_weight' in message
    assert not list((tmp_path / 'work').glob('iter_*.pth'))


def test_non_finite_gradient_with_finite_losses_skips_the_step(tiny_run):
    """A gradient turned NaN on its way back (finite losses) leaves parameters, optimizer state
    and BatchNorm statistics as they were."""
    init_default_scope('mmdet')
    student = dict(tiny_run['student'])
    student['backbone'] = dict(student['backbone'], norm_eval=False, frozen_stages=-1)
    model = MODELS.build(dict(type='DetectionDistiller', student=student,
                              teacher=tiny_run['teacher'], teacher_ckpt=tiny_run['teacher_ckpt'],
                              distill_losses=dict(vkd=dict(type='VkDLoss'))))
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    projector = model.distill_losses.vkd[2].projector.raw_weight
    handle = projector.register_hook(lambda grad: grad * float('nan'))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    batch = demo_mm_inputs(2, [(3, 64, 96), (3, 64, 96)], num_items=[2, 1], num_classes=3)
    log_vars = model.train_step(batch, optim)
    handle.remove()
    assert all(torch.isfinite(v) for v in log_vars.values())
    assert model.nonfinite_guard.skipped == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not optim.optimizer.state
    # The next, healthy step trains.
    model.train_step(batch, optim)
    assert model.nonfinite_guard.consecutive == 0
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())

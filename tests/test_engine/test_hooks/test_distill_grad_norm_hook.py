"""DistillGradNormHook: gradient norms of each loss part, measured without changing training."""
import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.engine.hooks import DistillGradNormHook
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'
OPTIM = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
             paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.)}))


def _distiller(tmp_path):
    init_default_scope('mmdet')
    student = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth')),
        distill_losses=dict(
            vkd=dict(type='VkDLoss', in_channels=16, out_channels=16, loss_weight=4.0),
            fitnet=dict(type='FitNetLoss', in_channels=16, out_channels=16),
            # one module over all levels: logged as `loss_rtk`, without a level suffix
            rtk=dict(type='RTKLoss', in_channels=16, out_channels=16, num_levels=5,
                     qk_dim=8))))


def _batch(seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(2, [(3, 64, 96), (3, 64, 64)], num_items=[3, 2], num_classes=3)


def _expected_norms(model, batch):
    """Plain torch: one forward, the loss parts summed by key prefix, one gradient each."""
    model = copy.deepcopy(model)
    params = [p for m in (model.student.backbone, model.student.neck) for p in m.parameters()
              if p.requires_grad]
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    total = lambda keys: sum(sum(v) if isinstance(v, list) else v  # noqa: E731
                             for k, v in losses.items() if k in keys)
    keys = {'vkd': [k for k in losses if k.startswith('loss_vkd_')],
            'fitnet': [k for k in losses if k.startswith('loss_fitnet_')],
            'rtk': ['loss_rtk']}
    keys['distill'] = keys['vkd'] + keys['fitnet'] + keys['rtk']
    keys['task'] = [k for k in losses if 'loss' in k and k not in keys['distill']]
    expected = {}
    for part, names in keys.items():
        assert names, part
        grads = torch.autograd.grad(total(names), params, retain_graph=True, allow_unused=True)
        flat = torch.cat([g.flatten() for g in grads if g is not None])
        expected[part] = torch.linalg.vector_norm(flat).item()
    return expected


def test_norms_match_plain_torch_and_leave_buffers_rng_and_grads_alone(tmp_path):
    model = _distiller(tmp_path)
    model.train()
    optim = build_optim_wrapper(model, OPTIM)
    batch = _batch()
    expected = _expected_norms(model, batch)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    rng = torch.get_rng_state()
    np_rng = np.random.get_state()[1].copy()
    norms = DistillGradNormHook().grad_norms(model, batch, optim)
    assert norms.keys() == expected.keys()
    for key in expected:
        assert norms[key] == pytest.approx(expected[key], rel=1e-4), key
    # The parts pull differently: the measurement is per part, not one norm copied around.
    assert len({round(v, 6) for v in norms.values()}) == 5
    for key, value in model.named_buffers():
        assert torch.equal(value, buffers[key]), key
    assert torch.equal(torch.get_rng_state(), rng)
    assert (np.random.get_state()[1] == np_rng).all()
    assert all(p.grad is None for p in model.parameters())


def _train(model, hook, iters=3):
    optim = build_optim_wrapper(model, OPTIM)
    hub = MessageHub.get_instance('test_distill_grad_norm_hook')
    for i in range(iters):
        batch = _batch(seed=i)
        if hook is not None:
            runner = SimpleNamespace(model=model, iter=i, max_iters=iters, optim_wrapper=optim,
                                     message_hub=hub)
            hook.before_train_iter(runner, i, batch)
        torch.manual_seed(100 + i)
        model.train_step(batch, optim)
    return model


def test_training_with_the_hook_equals_training_without(tmp_path):
    base = _distiller(tmp_path)
    plain = _train(copy.deepcopy(base), None)
    hook = DistillGradNormHook(ranges=[[0, 1], [-1, 0]])
    measured = _train(copy.deepcopy(base), hook)
    for (name, a), b in zip(plain.state_dict().items(), measured.state_dict().values()):
        assert torch.equal(a, b), name
    # first and last iteration of 3 only
    assert [entry['iter'] for entry in hook.history] == [0, 2]
    assert all(entry['task'] > 0 and entry['vkd'] > 0 for entry in hook.history)
    hub = MessageHub.get_instance('test_distill_grad_norm_hook')
    assert hub.get_scalar('train/grad_norm_vkd').current() == hook.history[-1]['vkd']
    hook.after_train(SimpleNamespace(log_dir=str(tmp_path)))
    assert json.loads((tmp_path / 'grad_norms.json').read_text()) == hook.history


@pytest.mark.parametrize('ranges, measured', [
    (None, [0, 4, 8]), ([[0, 2], [-2, 0]], [0, 1, 8, 9]), ([[3, 5]], [3, 4]),
    ([[-3, -1]], [7, 8])])
def test_measured_iterations(ranges, measured):
    hook = DistillGradNormHook(interval=4, ranges=ranges)
    assert [i for i in range(10) if hook._measured(i, 10)] == measured


def test_bad_arguments_name_the_hook(tmp_path):
    with pytest.raises(ValueError, match='DistillGradNormHook: interval'):
        DistillGradNormHook(interval=0)
    with pytest.raises(ValueError, match=r'DistillGradNormHook: ranges must be \[begin, end\)'):
        DistillGradNormHook(ranges=[[0, 1, 2]])
    model = _distiller(tmp_path)
    with pytest.raises(ValueError, match=r"student has no \['head'\]"):
        DistillGradNormHook(modules=['head']).grad_norms(model, _batch(), None)

"""The frozen teacher's fast path: folded BatchNorm + channels_last equal the plain fp32 forward
on every shipped detection teacher; bf16 keeps the losses close; nothing reaches autograd."""
import copy
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.distillers.frozen_teacher import (
    check_teacher_precision,
    fold_batchnorms,
    run_frozen_teacher,
)
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg
from vkd_mmdet.utils import resolve_model_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
BATCHNORMS = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)


def _detection_teachers() -> dict:
    """Distinct teacher configs of the shipped DetectionDistiller configs: first config using
    it -> (every config using it, the teacher config with pretrained init off)."""
    init_default_scope('mmdet')
    teachers = {}
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '[!_]*', '*.py'))):
        model = Config.fromfile(path).model
        if model.get('type') != 'DetectionDistiller':
            continue
        teacher = resolve_model_cfg(model.teacher, 'teacher')
        teacher.backbone.init_cfg = None  # pretrained init off: nothing is downloaded
        teacher.backbone.pop('pretrained', None)
        entry = teachers.setdefault(repr(teacher.to_dict()), (osp.relpath(path, ROOT), [], teacher))
        entry[1].append(osp.relpath(path, ROOT))
    return {name: (users, teacher) for name, users, teacher in teachers.values()}


TEACHERS = _detection_teachers()


def _randomise_batchnorms(model: nn.Module) -> None:
    """BN statistics and affine parameters away from the identity, so folding has work to do."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BATCHNORMS):
                shape = module.running_mean.shape
                module.running_mean.copy_(0.1 * torch.randn(shape, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(shape, generator=generator))
                module.weight.copy_(0.5 + torch.rand(shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(shape, generator=generator))


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm()).item()


def test_every_detection_config_teacher_is_covered():
    users = {path for paths, _ in TEACHERS.values() for path in paths}
    assert 'configs/vkd/faster_rcnn_r101_r18.py' in users
    for method in ('srd', 'nd', 'kdpp', 'diffkd', 'rtk', 'fitnet', 'cwd', 'pkd'):
        assert f'configs/{method}/{method}_faster_rcnn_r101_r18.py' in users
    assert {'configs/vkd/retinanet_r101_r18.py', 'configs/vkd/gfl_r101_r18.py',
            'configs/demo/vkd_fcos_r18-w32_r18-w16.py'} <= users
    assert len(TEACHERS) >= 4  # Faster R-CNN, RetinaNet, GFL R101 and the demo FCOS teacher


@pytest.mark.parametrize('name', sorted(TEACHERS))
def test_folded_channels_last_teacher_equals_the_plain_fp32_one(name):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    teacher = MODELS.build(copy.deepcopy(TEACHERS[name][1])).eval().requires_grad_(False)
    _randomise_batchnorms(teacher)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = teacher.extract_feat(x)  # plain: unfolded, NCHW, float32, no_grad
    num_bns = sum(isinstance(m, BATCHNORMS) for m in teacher.modules())

    probe = torch.randn(1, 3, 64, 64)
    fast = fold_batchnorms(teacher, lambda model: model.extract_feat(probe))
    got = run_frozen_teacher(fast, fast.extract_feat, x, 'fp32')

    assert fast is not teacher  # the fold passed its check...
    if num_bns:  # ... and left no BatchNorm in backbone + neck
        assert not any(isinstance(m, BATCHNORMS)
                       for part in (fast.backbone, fast.neck) for m in part.modules())
    # The stem conv (ResNet's conv1, CSPNeXt's stem, Swin's patch embedding).
    stem = next(m for m in fast.backbone.modules() if isinstance(m, nn.Conv2d))
    assert stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(not p.requires_grad for p in fast.parameters())
    assert len(got) == len(expected)
    for level, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == torch.float32 and g.is_contiguous() and not g.is_inference()
        assert _relative_error(g, e) <= 1e-5, (name, level, _relative_error(g, e))


def test_a_fold_that_changes_the_outputs_is_refused():
    # mmcv folds a BN into the conv *registered* before it: here a ReLU sits between them.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    _randomise_batchnorms(model)
    x = torch.randn(1, 3, 8, 8)
    assert fold_batchnorms(model, lambda m: (m(x),)) is model
    # Without the ReLU the fold is exact and taken.
    exact = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    _randomise_batchnorms(exact)
    folded = fold_batchnorms(exact, lambda m: (m(x),))
    assert isinstance(folded[1], nn.Identity)
    with torch.no_grad():
        assert _relative_error(folded(x), exact(x)) < 1e-6


def test_teacher_outputs_are_ordinary_tensors_for_autograd():
    teacher = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval().requires_grad_(False)
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        raw = teacher(x)
    student = torch.randn(2, 4, 6, 6, requires_grad=True)
    # What the copy avoids: MSE saves its target for backward, refused for inference tensors.
    with pytest.raises(RuntimeError, match='Inference tensors'):
        F.mse_loss(student * 1, raw).backward()
    (target,) = run_frozen_teacher(teacher, lambda inputs: (teacher(inputs),), x)
    assert not target.is_inference() and not target.requires_grad and target.grad_fn is None
    F.mse_loss(student * 1, target).backward()
    torch.testing.assert_close(student.grad, 2 * (student - target).detach() / student.numel())


def test_fp32_teacher_runs_exactly_under_a_surrounding_autocast():
    teacher = nn.Conv2d(3, 4, 3).requires_grad_(False)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = teacher(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        (fp32,) = run_frozen_teacher(teacher, lambda inputs: (teacher(inputs),), x, 'fp32')
        (bf16,) = run_frozen_teacher(teacher, lambda inputs: (teacher(inputs),), x, 'bf16')
    assert _relative_error(fp32, expected) < 1e-6
    assert 1e-4 < _relative_error(bf16, expected) < 3e-2  # bf16: ~3 significant digits
    assert bf16.dtype == torch.float32  # the losses always get float32


def test_bad_teacher_precision_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"teacher_precision='fp8': expected one of"):
        check_teacher_precision('fp8')
    with pytest.raises(ValueError, match="teacher_precision='fp16' needs a CUDA device"):
        check_teacher_precision('fp16', 'cpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="teacher_precision='fp16' needs a CUDA device"):
            MODELS.build(_distiller_cfg(tmp_path, teacher_precision='fp16'))


def _distiller_cfg(tmp_path, **kwargs) -> dict:
    init_default_scope('mmdet')
    student = tiny_detector_cfg(FASTER_RCNN, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(FASTER_RCNN, base_channels=16, neck_channels=32)
    ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'), seed=1)
    return dict(type='DetectionDistiller', student=student, teacher=teacher, teacher_ckpt=ckpt,
                distill_losses=dict(
                    vkd=dict(type='VkDLoss', in_channels=16, out_channels=32),
                    fitnet=dict(type='FitNetLoss', in_channels=16, out_channels=32),
                    kd=dict(type='LogitKDLoss')), **kwargs)


def test_bf16_teacher_losses_stay_close_to_fp32(tmp_path):
    """Tolerance: each distillation loss within 1 % (relative) of its fp32 value (measured: at
    most 0.3 %, RoI logit KD; VkD 0.02 %); the student's own losses are equal."""
    cfg = _distiller_cfg(tmp_path)
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3)
    losses = {}
    for precision in ('fp32', 'bf16'):
        torch.manual_seed(0)  # same student, same projectors, same RoI sampling
        model = MODELS.build(dict(copy.deepcopy(cfg), teacher_precision=precision)).train()
        losses[precision] = model.loss(**copy.deepcopy(data))
        distill = sum(v for k, v in losses[precision].items()
                      if k.startswith(('loss_vkd', 'loss_fitnet', 'loss_kd')))
        distill.backward()  # the bf16 teacher's outputs take part in autograd like fp32 ones
        assert all(p.grad is None for p in model.teacher.parameters())
    fp32, bf16 = losses['fp32'], losses['bf16']
    assert set(fp32) == set(bf16)
    distill_keys = [k for k in fp32 if k.startswith(('loss_vkd', 'loss_fitnet', 'loss_kd'))]
    assert len(distill_keys) == 5 + 5 + 1
    for key in distill_keys:
        assert bf16[key].dtype == torch.float32
        torch.testing.assert_close(bf16[key], fp32[key], rtol=1e-2, atol=0, msg=key)
    assert any(not torch.equal(bf16[k], fp32[k]) for k in distill_keys)  # bf16 really ran
    for key in set(fp32) - set(distill_keys):
        torch.testing.assert_close(bf16[key], fp32[key], rtol=0, atol=0, msg=key)


def test_the_distiller_teacher_is_folded_frozen_and_unsaved(tmp_path):
    model = MODELS.build(_distiller_cfg(tmp_path)).train()
    assert not any(isinstance(m, BATCHNORMS) for m in model.teacher.backbone.modules())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert not any(key.startswith('teacher') for key in model.state_dict())
    # A rebuild (what --resume does) loads teacher_ckpt and folds it again: the same teacher.
    again = MODELS.build(_distiller_cfg(tmp_path))
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(model.teacher_forward(model.teacher.extract_feat, x),
                    again.teacher_forward(again.teacher.extract_feat, x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

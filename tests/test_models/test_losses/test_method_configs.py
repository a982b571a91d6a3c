"""Every shipped peer-method config: one training step on tiny detectors, losses logged by name."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
METHODS = ('srd', 'nd', 'kdpp', 'diffkd', 'rtk', 'fitnet', 'cwd', 'pkd', 'stacked')
CONFIGS = sorted(path for method in METHODS
                 for path in glob.glob(osp.join(ROOT, 'configs', method, '*.py')))
PACKAGED = {'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
            'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py'}
NECK, FC, NUM_CLASSES = 16, 32, 3  # tiny widths: FPN 16, box-head FCs 2 * 16


def _tiny_distiller(path, tmp_path):
    """The config's distiller with tiny random detectors; its distill_losses kept, only widths,
    class count and the class-centre file adapted."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(path).model
    packaged = PACKAGED['retinanet' if 'retinanet' in osp.basename(path) else 'faster_rcnn']
    cfg.student = tiny_detector_cfg(packaged, NUM_CLASSES, base_channels=8, neck_channels=NECK)
    cfg.teacher = tiny_detector_cfg(packaged, NUM_CLASSES, base_channels=12,
                                    neck_channels=NECK)
    cfg.teacher_ckpt = save_random_checkpoint(cfg.teacher, str(tmp_path / 'teacher.pth'))
    for loss in cfg.distill_losses.values():
        if loss.get('type') == 'NDLoss':
            centers = str(tmp_path / 'centers.pth')
            torch.save({'centers': torch.randn(NUM_CLASSES + 1, FC)}, centers)
            loss.update(num_classes=NUM_CLASSES, in_channels=FC, out_channels=FC,
                        class_centers=centers)
            continue
        for key in ('in_channels', 'out_channels', 'latent_channels'):
            if key in loss:  # FPN widths: 256 -> NECK (DiffKD's latent 128 -> NECK / 2)
                loss[key] = loss[key] * NECK // 256
    return MODELS.build(cfg)


def test_every_method_has_a_config():
    names = {osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS}
    for method in ('srd', 'nd', 'kdpp', 'diffkd', 'rtk', 'fitnet', 'cwd', 'pkd'):
        assert f'{method}/{method}_faster_rcnn_r101_r18.py' in names
    for method in ('srd', 'diffkd', 'rtk', 'fitnet', 'cwd', 'pkd'):
        assert f'{method}/{method}_retinanet_r101_r18.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_one_train_step(path, tmp_path):
    model = _tiny_distiller(path, tmp_path)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2],
                          num_classes=NUM_CLASSES)
    before = {n: p.detach().clone() for n, p in model.distill_losses.named_parameters()}
    log = model.train_step(data, optim)
    assert all(torch.isfinite(v) for v in log.values())
    for name, kind in model.distill_inputs.items():
        keys = [k for k in log if k.startswith(f'loss_{name}')]
        if kind == 'fpn':
            # one key per level (and per term for DiffKD), stride-named
            assert len(keys) % len(model.distill_levels[name]) == 0 and keys
        else:
            assert keys == [f'loss_{name}']
    # The distillation modules train (their own parameters moved).
    moved = [n for n, p in model.distill_losses.named_parameters()
             if not torch.equal(p, before[n])]
    assert moved or not before


def test_stacked_config_logs_distinct_names(tmp_path):
    path = osp.join(ROOT, 'configs', 'stacked', 'vkd_kdpp_faster_rcnn_r101_r18.py')
    model = _tiny_distiller(path, tmp_path)
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2],
                          num_classes=NUM_CLASSES)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    distill = sorted(k for k in losses if k.startswith(('loss_vkd', 'loss_nd', 'loss_kd')))
    assert distill == ['loss_kd', 'loss_nd'] + [f'loss_vkd_p{k}' for k in range(2, 7)]

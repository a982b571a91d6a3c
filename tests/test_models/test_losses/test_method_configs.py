"""Every shipped peer-method config: one training step on tiny detectors, losses logged by name;
every shipped detection config: which parameters its optimizer rules decay."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.apis import init_detector
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.apis import export_student
from vkd_mmdet.models.losses import VkDLoss
from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg
from vkd_mmdet.utils import resolve_model_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
METHODS = ('srd', 'nd', 'kdpp', 'diffkd', 'rtk', 'fitnet', 'cwd', 'pkd', 'stacked', 'fgd', 'mgd',
           'ld', 'crosskd')
CONFIGS = sorted(path for method in METHODS
                 for path in glob.glob(osp.join(ROOT, 'configs', method, '*.py')))
# Every shipped mmdet-scope config (configs/vkd_cls are mmpretrain's: test_cls_configs.py).
# RTMDet, DINO and Mask R-CNN have no tiny stand-in here: their optimizer rules (the student
# recipe's paramwise_cfg plus no decay on projectors) are checked on the real-size models by
# tests/test_configs/test_vkd_configs.py::_check_student_recipe_param_groups.
REAL_SIZE_ONLY = ('configs/vkd/rtmdet_l_tiny.py', 'configs/vkd/dino_swin-l_r50.py',
                  'configs/vkd/mask_rcnn_r101_r50.py')
DETECTION_CONFIGS = sorted(
    path for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    # not mmpretrain's, not the bases nor the deploy configs (folders named _*_)
    if 'vkd_cls' not in osp.relpath(path, ROOT)
    and not any(part.startswith('_') for part in osp.relpath(path, ROOT).split(osp.sep))
    and osp.relpath(path, ROOT) not in REAL_SIZE_ONLY)
# The packaged config whose tiny version stands in for a detector of each type.
PACKAGED = {'FasterRCNN': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
            'RetinaNet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
            'GFL': 'gfl/gfl_r50_fpn_1x_coco.py',
            'FCOS': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
            'ATSS': 'atss/atss_r50_fpn_1x_coco.py'}
NECK, FC, NUM_CLASSES = 16, 32, 3  # tiny widths: FPN 16, box-head FCs 2 * 16


def _tiny_detector(model_cfg, base_channels=8):
    """A tiny random detector of the type of ``model_cfg`` (a config dict or ``cfg_path``)."""
    detector_type = resolve_model_cfg(model_cfg, 'model').type
    cfg = tiny_detector_cfg(PACKAGED[detector_type], NUM_CLASSES, base_channels=base_channels,
                            neck_channels=NECK)
    if detector_type in ('FCOS', 'GFL', 'ATSS'):  # GroupNorm heads: 32 groups do not divide NECK
        cfg.bbox_head.norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
    return cfg


def _tiny_distiller_cfg(path, tmp_path):
    """The config with its distiller made of tiny random detectors of the same types; its
    distill_losses kept, only widths, class count and the class-centre file adapted. A teacher
    whose modules the student inherits gets the student's widths."""
    init_default_scope('mmdet')
    config = Config.fromfile(path)
    cfg = config.model
    cfg.student = _tiny_detector(cfg.student)
    cfg.teacher = _tiny_detector(cfg.teacher, base_channels=8 if cfg.get('inherit') else 12)
    # CrossKD cuts the head towers at conv `tower_conv`: both tiny heads need that many.
    convs = [loss.get('tower_conv', 3) for loss in cfg.distill_losses.values()
             if loss.get('type') == 'CrossKDLoss']
    for side in (cfg.student, cfg.teacher) if convs else ():
        side.bbox_head.stacked_convs = max(convs)
    cfg.teacher_ckpt = save_random_checkpoint(cfg.teacher, str(tmp_path / 'teacher.pth'))
    for loss in cfg.distill_losses.values():
        if loss.get('type') == 'NDLoss':
            centers = str(tmp_path / 'centers.pth')
            torch.save({'centers': torch.randn(NUM_CLASSES + 1, FC)}, centers)
            loss.update(num_classes=NUM_CLASSES, in_channels=FC, out_channels=FC,
                        class_centers=centers)
            continue
        for key in ('in_channels', 'out_channels'):
            if key in loss:  # the FPN widths of both sides
                loss[key] = NECK
        if 'latent_channels' in loss:  # DiffKD's latent: 128 of 256 -> NECK / 2
            loss.latent_channels = loss.latent_channels * NECK // 256
    return config


def _tiny_distiller(path, tmp_path):
    return MODELS.build(_tiny_distiller_cfg(path, tmp_path).model)


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
    for name, kind in model.loss_kinds.items():
        keys = [k for k in log if k.startswith(f'loss_{name}')]
        if kind == 'fpn':
            # one key per level (and per term for DiffKD), stride-named
            assert len(keys) % len(model.distill_levels[name]) == 0 and keys
        elif kind == 'dense_head':  # one key per term
            assert keys and all(key.startswith(f'loss_{name}_') for key in keys)
        else:
            assert keys == [f'loss_{name}']
    # The distillation modules train: each one that has parameters moved some of them (not
    # all: a bias in front of a standardisation gets no gradient), and only the losses with
    # nothing to learn at these matching widths have none.
    parameter_free = {'CWDLoss', 'LogitKDLoss', 'NDLoss', 'PKDLoss', 'LDLoss', 'CrossKDLoss'}
    moved = {n for n, p in model.distill_losses.named_parameters()
             if not torch.equal(p, before[n])}
    for name, modules in model.distill_losses.items():
        for index, module in enumerate(modules):
            kind = type(module).__name__
            own = {f'{name}.{index}.{n}' for n, _ in module.named_parameters()}
            assert bool(own) != (kind in parameter_free), f'{name}.{index} ({kind}): {own}'
            assert not own or own & moved, f'{name}.{index} ({kind}): no parameter moved'


INHERIT_CONFIGS = [path for path in CONFIGS if osp.basename(osp.dirname(path)) in ('fgd', 'mgd')]


@pytest.mark.parametrize('path', INHERIT_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_inherits_the_teacher_and_exports_a_plain_student(path, tmp_path):
    """FGD / MGD: after init_weights the student's inherited modules are the teacher
    checkpoint's; after a step, the export holds the student alone (no GcBlock, no generation
    block) and loads into plain mmdet, key for key."""
    cfg = _tiny_distiller_cfg(path, tmp_path)
    model = MODELS.build(cfg.model)
    model.init_weights()
    teacher = torch.load(cfg.model.teacher_ckpt, weights_only=True)['state_dict']
    student = model.student.state_dict()
    inherited = [key for key in student if key.split('.')[0] in cfg.model.inherit]
    assert inherited and all(torch.equal(student[key], teacher[key]) for key in inherited)

    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2],
                          num_classes=NUM_CLASSES)
    model.train_step(data, OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3)))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'iter_1.pth')
    cfg_path, ckpt_path = export_student(cfg, str(tmp_path / 'iter_1.pth'),
                                         str(tmp_path / 'export'))
    plain = init_detector(cfg_path, ckpt_path, device='cpu')
    exported = torch.load(ckpt_path, weights_only=True)['state_dict']
    assert exported.keys() == plain.state_dict().keys() == model.student.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert torch.equal(value, model.student.state_dict()[key]), key


def test_stacked_config_logs_distinct_names(tmp_path):
    path = osp.join(ROOT, 'configs', 'stacked', 'vkd_kdpp_faster_rcnn_r101_r18.py')
    model = _tiny_distiller(path, tmp_path)
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2],
                          num_classes=NUM_CLASSES)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    distill = sorted(k for k in losses if k.startswith(('loss_vkd', 'loss_nd', 'loss_kd')))
    assert distill == ['loss_kd', 'loss_nd'] + [f'loss_vkd_p{k}' for k in range(2, 7)]


@pytest.mark.parametrize('path', DETECTION_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_weight_decay_spares_orthogonal_projectors_alone(path, tmp_path):
    """The config's own optim_wrapper (paramwise rules included) on its (tiny) model: weight
    decay 0 for exactly VkD's student maps (the orthogonal projectors, or the adapter of the
    linear ablation, whose config keeps VkD's treatment) plus every bias where the detector's
    mmdet recipe says so (FCOS's bias_decay_mult=0); every other parameter, the other methods'
    free adapters (SRD's linear map, ND's, DiffKD's, FitNet's ...) included, gets the
    optimizer's weight decay."""
    cfg = Config.fromfile(path)
    if str(cfg.model.type).endswith('Distiller'):
        # the rule is the optimizer constructor's, not a key each config must repeat
        assert cfg.optim_wrapper.constructor == 'DistillOptimWrapperConstructor'
        assert 'raw_weight' not in str(cfg.optim_wrapper.get('paramwise_cfg', {}))
        model = _tiny_distiller(path, tmp_path)
    else:  # a plain detector (the demo's teacher and student)
        init_default_scope('mmdet')
        model = MODELS.build(_tiny_detector(cfg.model))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_wd = cfg.optim_wrapper.optimizer.weight_decay
    assert base_wd > 0
    names = {id(p): name for name, p in model.named_parameters()}
    decay = {names[id(p)]: group['weight_decay']
             for group in wrapper.optimizer.param_groups for p in group['params']}
    assert set(decay) == {name for name, p in model.named_parameters() if p.requires_grad}

    # A VkDLoss's parameters are those of its map (.projector: orthogonal, or the ablation's
    # free map, whose config keeps VkD's treatment).
    expected = {f'{module_name}.{name}' for module_name, module in model.named_modules()
                if isinstance(module, VkDLoss) for name, _ in module.named_parameters()}
    assert expected >= {f'{module_name}.{name}' for module_name, module in model.named_modules()
                        if isinstance(module, OrthogonalProjector)
                        for name, _ in module.named_parameters()}
    if cfg.optim_wrapper.get('paramwise_cfg', {}).get('bias_decay_mult') == 0:
        expected |= {name for name in decay if name.rsplit('.', 1)[-1] == 'bias'}
    assert {name for name, wd in decay.items() if wd == 0} == expected
    assert all(wd == base_wd for name, wd in decay.items() if name not in expected)

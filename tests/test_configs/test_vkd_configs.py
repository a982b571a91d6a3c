"""Every shipped VkD config builds its real-size models and runs one distillation train step."""
import glob
import os.path as osp

import pytest
import torch
import yaml
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.utils import get_installed_path

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.utils import resolve_model_cfg

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'vkd')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
PRETRAINED_OFF = {'model.student.backbone.init_cfg': None, 'model.teacher.backbone.init_cfg': None}
# What each config distils: the strides both necks give (the student's neck widths -> the
# teacher's), as mmdet's configs state them (anchor / point generator strides, neck widths).
DISTILLED = {
    'faster_rcnn_r101_r18.py': ([4, 8, 16, 32, 64], 256, 256),
    'gfl_r101_r18.py': ([8, 16, 32, 64, 128], 256, 256),
    'retinanet_r101_r18.py': ([8, 16, 32, 64, 128], 256, 256),
    'rtmdet_l_tiny.py': ([8, 16, 32], 96, 256),
    'dino_swin-l_r50.py': ([8, 16, 32, 64], 256, 256),      # the teacher's stride 4 is unpaired
    'mask_rcnn_r101_r50.py': ([4, 8, 16, 32, 64], 256, 256),
}
# Each config's student config (its optim_wrapper is what the student trains with alone).
STUDENTS = {
    'faster_rcnn_r101_r18.py': '_base_/students/faster_rcnn_r18_fpn_2x_coco.py',
    'gfl_r101_r18.py': '_base_/students/gfl_r18_fpn_ms-2x_coco.py',
    'retinanet_r101_r18.py': '_base_/students/retinanet_r18_fpn_2x_coco.py',
    'rtmdet_l_tiny.py': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'dino_swin-l_r50.py': 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    'mask_rcnn_r101_r50.py': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py',
}
# The first three keep their original two-image batch; the others run the cheapest real-size
# step, one image: 64 x 96 px, except DINO, whose two-stage query selection takes the top 900 of
# the encoder's tokens (192 x 256 px gives 1020 over strides 8-64).
BATCHES = {name: dict(batch_size=2, image_shapes=[(3, 128, 160), (3, 96, 128)], num_items=[3, 1])
           for name in ('faster_rcnn_r101_r18.py', 'gfl_r101_r18.py', 'retinanet_r101_r18.py')}
BATCHES.update({
    'rtmdet_l_tiny.py': dict(batch_size=1, image_shapes=[(3, 64, 96)], num_items=[2]),
    'dino_swin-l_r50.py': dict(batch_size=1, image_shapes=[(3, 192, 256)], num_items=[2]),
    'mask_rcnn_r101_r50.py': dict(batch_size=1, image_shapes=[(3, 64, 96)], num_items=[2],
                                  with_mask=True),
})

def test_the_issue_configs_exist():
    names = {osp.basename(path) for path in CONFIGS}
    assert {'faster_rcnn_r101_r18.py', 'retinanet_r101_r18.py'} <= names
    assert names & {'fcos_r101_r18.py', 'gfl_r101_r18.py'}
    assert names >= {'rtmdet_l_tiny.py', 'dino_swin-l_r50.py', 'mask_rcnn_r101_r50.py'}
    assert names == set(DISTILLED)


def _zoo_weights(cfg_path: str) -> str:
    """The checkpoint URL mmdet's packaged metafile.yml lists for a packaged config."""
    relative = cfg_path.split('::', 1)[1]
    metafile = osp.join(get_installed_path('mmdet'), '.mim', 'configs',
                        osp.dirname(relative), 'metafile.yml')
    with open(metafile) as f:
        models = yaml.safe_load(f)['Models']
    return next(model['Weights'] for model in models
                if model['Config'] == f'configs/{relative}')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_teacher_checkpoint_is_the_zoo_one_of_the_teacher_config(path):
    cfg = Config.fromfile(path)
    assert cfg.model.teacher_ckpt == _zoo_weights(cfg.model.teacher.cfg_path)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_runs_one_train_step_with_pretrained_init_off(path, tmp_path):
    init_default_scope('mmdet')
    name = osp.basename(path)
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(PRETRAINED_OFF)
    assert cfg.model.teacher_ckpt.startswith('https://download.openmmlab.com/')
    # Stand in for the zoo checkpoint with a random one of the same architecture; the distiller
    # takes the built teacher (one build of it, not two) and loads the checkpoint into it.
    model_cfg = cfg.model.to_dict()
    teacher = MODELS.build(resolve_model_cfg(cfg.model.teacher, 'teacher'))
    model_cfg['teacher_ckpt'] = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, model_cfg['teacher_ckpt'])
    model_cfg['teacher'] = teacher
    model = MODELS.build(model_cfg)
    # As the runner does: DINO's heads without their init give losses ~1e4 (non-finite for some
    # seeds).
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    _check_student_recipe_param_groups(model, optim_wrapper, STUDENTS[name])
    data = demo_mm_inputs(**BATCHES[name], num_classes=80)
    losses = model.train_step(data, optim_wrapper)
    strides, student_width, teacher_width = DISTILLED[name]
    vkd_keys = sorted((key for key in losses if key.startswith('loss_vkd_p')),
                      key=lambda key: int(key[len('loss_vkd_p'):]))
    assert vkd_keys == [f'loss_vkd_p{stride.bit_length() - 1}' for stride in strides]
    assert all(torch.isfinite(value) for value in losses.values())
    projectors = [m for m in model.modules() if isinstance(m, OrthogonalProjector)]
    assert [(p.in_channels, p.out_channels) for p in projectors] == \
        [(student_width, teacher_width)] * len(strides)


def _param_settings(optim_wrapper) -> dict:
    return {id(param): (group['lr'], group.get('weight_decay', 0))
            for group in optim_wrapper.optimizer.param_groups for param in group['params']}


def _check_student_recipe_param_groups(model, optim_wrapper, student_cfg: str) -> None:
    """Each student parameter gets the lr and weight decay mmdet gives it when the student trains
    alone under its packaged config's optim_wrapper (DINO: backbone lr x 0.1; RTMDet: no decay
    on norms and biases); every projector parameter gets no decay."""
    packaged = osp.join(get_installed_path('mmdet'), '.mim', 'configs',
                        student_cfg.split('::', 1)[1]) if '::' in student_cfg \
        else osp.join(CONFIG_DIR, '..', student_cfg)
    alone = _param_settings(build_optim_wrapper(model.student,
                                                Config.fromfile(packaged).optim_wrapper))
    ours = _param_settings(optim_wrapper)
    for name, param in model.student.named_parameters():
        if param.requires_grad:
            assert ours[id(param)] == alone[id(param)], name
    projectors = [param for module in model.modules() if isinstance(module, OrthogonalProjector)
                  for param in module.parameters()]
    assert projectors and all(ours[id(param)][1] == 0 for param in projectors)


def test_rtmdet_config_keeps_the_student_recipe_hooks():
    """EMAHook and PipelineSwitchHook exactly as mmdet's RTMDet-tiny config has them (a config
    cannot append to its base's list, so ours restates them), then ours."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'rtmdet_l_tiny.py'))
    packaged = Config.fromfile(osp.join(get_installed_path('mmdet'), '.mim', 'configs',
                                        'rtmdet', 'rtmdet_tiny_8xb32-300e_coco.py'))
    assert _unscoped(cfg.custom_hooks[:2]) == _unscoped(packaged.custom_hooks)
    assert [hook['type'] for hook in cfg.custom_hooks[2:]] == ['ExportStudentHook', 'RNGStateHook']


def _unscoped(node):
    """``node`` without the ``_scope_`` keys mmengine adds to what a ``mmdet::`` base defines."""
    if isinstance(node, dict):
        return {key: _unscoped(value) for key, value in node.items() if key != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_unscoped(value) for value in node]
    return node

"""Every shipped VkD config builds its real-size models and runs one distillation train step."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.testing import save_random_checkpoint
from vkd_mmdet.utils import resolve_model_cfg

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'vkd')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
PRETRAINED_OFF = {'model.student.backbone.init_cfg': None, 'model.teacher.backbone.init_cfg': None}


def test_the_issue_configs_exist():
    names = {osp.basename(path) for path in CONFIGS}
    assert {'faster_rcnn_r101_r18.py', 'retinanet_r101_r18.py'} <= names
    assert names & {'fcos_r101_r18.py', 'gfl_r101_r18.py'}


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_runs_one_train_step_with_pretrained_init_off(path, tmp_path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(PRETRAINED_OFF)
    assert cfg.model.teacher_ckpt.startswith('https://download.openmmlab.com/')
    # Stand in for the zoo checkpoint with a random one of the same architecture.
    teacher = resolve_model_cfg(cfg.model.teacher, 'teacher')
    cfg.model.teacher_ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'))
    model = MODELS.build(cfg.model).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = demo_mm_inputs(2, [(3, 128, 160), (3, 96, 128)], num_items=[3, 1], num_classes=80)
    losses = model.train_step(data, optim_wrapper)
    vkd_keys = [key for key in losses if key.startswith('loss_vkd_p')]
    assert len(vkd_keys) == 5
    assert all(torch.isfinite(value) for value in losses.values())

"""probe_neck_levels: strides and widths as mmdet's configs state them, and no side effects."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.utils import NeckLevel, probe_neck_levels
from vkd_mmdet.testing import tiny_detector_cfg

FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')


def _swin_retinanet(**swin):
    """RetinaNet over a small Swin (window 7: every stage of a 128 px input is padded)."""
    cfg = tiny_detector_cfg(RETINANET)
    cfg.backbone = dict(type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1],
                        num_heads=[1, 1, 1, 1], window_size=7, out_indices=(1, 2, 3), **swin)
    cfg.neck.update(in_channels=[32, 64, 128], start_level=0)
    return MODELS.build(cfg)


@pytest.mark.parametrize('config, generator', [
    (FASTER_RCNN, ('rpn_head', 'anchor_generator')),
    (RETINANET, ('bbox_head', 'anchor_generator')),  # P7 (stride 128) takes the 256 px probe
])
def test_strides_and_widths_are_the_ones_the_heads_are_configured_for(config, generator):
    cfg = tiny_detector_cfg(config, neck_channels=24)
    strides = cfg[generator[0]][generator[1]]['strides']
    assert probe_neck_levels(MODELS.build(cfg), 'student') == \
        [NeckLevel(stride, 24) for stride in strides]


def test_swin_window_padding_does_not_change_the_strides():
    assert probe_neck_levels(_swin_retinanet(), 'teacher') == \
        [NeckLevel(stride, 32) for stride in (8, 16, 32, 64, 128)]


def test_probe_moves_no_batchnorm_statistic_no_training_flag_and_no_random_stream():
    cfg = tiny_detector_cfg(FASTER_RCNN)
    cfg.backbone.update(norm_eval=False, frozen_stages=-1)  # BatchNorm that trains in train()
    model = MODELS.build(cfg).train()
    model.backbone.layer1.eval()  # a mixed state must come back as it was
    state = copy.deepcopy(model.state_dict())
    modes = [module.training for module in model.modules()]
    rng = torch.get_rng_state()
    probe_neck_levels(model, 'student')
    assert [module.training for module in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key  # running_mean / var, num_batches_tracked
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_backbone_that_cannot_take_the_dummy_size_names_the_side_and_the_size():
    # An absolute position embedding fixed to 224 px refuses a 128 px input.
    model = _swin_retinanet(use_abs_pos_embed=True, pretrain_img_size=224)
    with pytest.raises(RuntimeError, match='probing the teacher backbone [+] neck on a dummy '
                                           '128x128 batch failed'):
        probe_neck_levels(model, 'teacher')

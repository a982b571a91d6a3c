"""pair_levels / level_loss_cfg: student and teacher neck outputs pair by stride, clear errors."""
import pytest

import vkd_mmdet  # noqa: F401  (registers the losses)
from vkd_mmdet.models.distillers.level_pairing import level_loss_cfg, pair_levels
from vkd_mmdet.models.losses import LogitKDLoss, RTKLoss, VkDLoss
from vkd_mmdet.models.utils import NeckLevel

DINO_R50 = [NeckLevel(stride, 256) for stride in (8, 16, 32, 64)]
DINO_SWIN_L = [NeckLevel(stride, 256) for stride in (4, 8, 16, 32, 64)]
RTMDET_TINY = [NeckLevel(stride, 96) for stride in (8, 16, 32)]


def _pairs(cfg, student=DINO_R50, teacher=DINO_SWIN_L):
    return [(p.student, p.teacher, p.stride, p.name) for p in pair_levels('vkd', cfg, student,
                                                                         teacher)]


def test_default_pairs_every_common_stride_and_names_it_by_log2():
    assert _pairs({}) == [(0, 1, 8, 'p3'), (1, 2, 16, 'p4'), (2, 3, 32, 'p5'), (3, 4, 64, 'p6')]


def test_levels_name_student_indices_and_strides_name_pixels():
    cfg = dict(levels=[3, 0])
    assert _pairs(cfg) == [(3, 4, 64, 'p6'), (0, 1, 8, 'p3')]
    assert 'levels' not in cfg  # popped: the loss class never sees it
    assert _pairs(dict(strides=[16])) == [(1, 2, 16, 'p4')]


@pytest.mark.parametrize('cfg, student, teacher, message', [
    ({}, RTMDET_TINY, [NeckLevel(4, 256), NeckLevel(128, 256)],
     r'distill_losses.vkd: the necks have no common stride \(student strides \[8, 16, 32\], '
     r'teacher strides \[4, 128\]\)'),
    (dict(strides=[4]), DINO_R50, DINO_SWIN_L,
     r'distill_losses.vkd.strides: stride 4 is missing from the student neck \(student strides '
     r'\[8, 16, 32, 64\], teacher strides \[4, 8, 16, 32, 64\]\)'),
    (dict(levels=[0], strides=[8]), DINO_R50, DINO_SWIN_L, 'give `levels`.*or `strides`'),
    (dict(levels=[4]), DINO_R50, DINO_SWIN_L, r'levels=\[4\]: expected student neck output '
     r'indices 0..3'),
    (dict(levels=[]), DINO_R50, DINO_SWIN_L, r'levels=\[\]'),
    ({}, [NeckLevel(8, 32), NeckLevel(8, 32)], DINO_SWIN_L,
     r'the student neck has several outputs of stride \[8\]'),
    ({}, [NeckLevel(12, 32)], [NeckLevel(12, 64)], 'stride 12 is not a power of two'),
])
def test_bad_pairings_raise_naming_the_key_and_both_sides(cfg, student, teacher, message):
    with pytest.raises(ValueError, match=message):
        pair_levels('vkd', cfg, student, teacher)


def test_declared_channels_are_filled_in_checked_and_none_added_where_none_declared():
    pairs = pair_levels('vkd', {}, RTMDET_TINY, [NeckLevel(s, 256) for s in (8, 16, 32)])
    cfg = level_loss_cfg('vkd', dict(type='VkDLoss'), pairs[:1], VkDLoss.channel_args)
    assert (cfg['in_channels'], cfg['out_channels']) == (96, 256)
    assert level_loss_cfg('vkd', dict(type='VkDLoss', in_channels=96), pairs[:1],
                          VkDLoss.channel_args) == \
        dict(type='VkDLoss', in_channels=96, out_channels=256)
    with pytest.raises(ValueError,
                       match=r'vkd.out_channels=128 but teacher.neck.out_channels=256 \(stride 8'):
        level_loss_cfg('vkd', dict(type='VkDLoss', out_channels=128), pairs[:1],
                       VkDLoss.channel_args)
    # a loss that declares no channel arguments gets none
    assert level_loss_cfg('kd', dict(type='LogitKDLoss'), pairs[:1],
                          LogitKDLoss.channel_args) == dict(type='LogitKDLoss')


def test_one_module_over_levels_of_different_widths_is_refused():
    student = [NeckLevel(8, 32), NeckLevel(16, 64)]
    pairs = pair_levels('rtk', {}, student, [NeckLevel(8, 64), NeckLevel(16, 64)])
    with pytest.raises(ValueError, match='one student width, the neck gives \\[32, 64\\]'):
        level_loss_cfg('rtk', dict(type='RTKLoss'), pairs, RTKLoss.channel_args)

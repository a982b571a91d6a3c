"""tools/train.py on the shipped dense-head configs (CrossKD on GFL, VkD + CrossKD): their
distiller, with tiny GFL detectors and a random teacher checkpoint, trains on the tiny run's data,
and the exported student loads into plain mmdet and predicts."""
import json
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vkd_mmdet.testing import CLASSES, save_random_checkpoint, tiny_detector_cfg

from .conftest import REPO, run_python, tool_main
from .test_train_export import LOAD_WITH_MMDET

GFL = 'gfl/gfl_r50_fpn_1x_coco.py'
CONFIG = """_base_ = ['{base}']
model = dict(_delete_=True, type='DetectionDistiller', student={student!r}, teacher={teacher!r},
             teacher_ckpt='{teacher_ckpt}', distill_losses={losses!r})
"""


def _tiny_gfl(base_channels: int, neck_channels: int) -> dict:
    cfg = tiny_detector_cfg(GFL, num_classes=len(CLASSES), base_channels=base_channels,
                            neck_channels=neck_channels)
    # CrossKD cuts the towers at conv 3; 32 GroupNorm groups do not divide the tiny widths.
    cfg.bbox_head.update(stacked_convs=3, norm_cfg=dict(type='GN', num_groups=4))
    cfg.test_cfg.score_thr = 0.0
    return cfg.to_dict()


@pytest.mark.parametrize('shipped', ['crosskd/crosskd_gfl_r101_r50.py',
                                     'stacked/vkd_crosskd_gfl_r101_r50.py'])
def test_shipped_head_config_trains_and_exports(shipped, tiny_run, tmp_path):
    losses = Config.fromfile(str(REPO / 'configs' / shipped)).model.distill_losses.to_dict()
    for loss in losses.values():  # the tiny widths: the distiller fills them in
        loss.pop('in_channels', None)
        loss.pop('out_channels', None)
    init_default_scope('mmdet')
    teacher, student = _tiny_gfl(16, 32), _tiny_gfl(8, 16)
    config = tmp_path / 'tiny_head.py'
    config.write_text(CONFIG.format(
        base=tiny_run['config'], student=student, teacher=teacher, losses=losses,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'), seed=1)))
    work_dir, name = tmp_path / 'work', shipped.replace('/', '_')[:-3]
    # A visualizer is a process-wide instance per name: each run names its own.
    runner = tool_main('train')([str(config), '--work-dir', str(work_dir), '--cfg-options',
                                 'train_cfg.max_iters=2', 'val_cfg=None',
                                 'val_dataloader=None', 'val_evaluator=None',
                                 f'experiment_name={name}', f'visualizer.name={name}'])
    assert runner.iter == 2
    scalars = next(work_dir.glob('*/vis_data/scalars.json'))
    logs = [json.loads(line) for line in scalars.read_text().splitlines()]
    train_logs = [log for log in logs if 'loss' in log]
    expected = ['loss_crosskd_cls', 'loss_crosskd_box'] + (
        [f'loss_vkd_p{k}' for k in range(3, 8)] if 'vkd' in losses else [])
    assert train_logs and all(math.isfinite(log[key]) for log in train_logs for key in expected)
    # Widths 16 -> 32: CrossKD learnt its 1x1 maps.
    assert any('projectors' in key for key in
               torch.load(work_dir / 'iter_2.pth', weights_only=False)['state_dict'])

    out = tmp_path / 'preds.pt'
    exported = work_dir / 'student'
    run_python(['-c', LOAD_WITH_MMDET, str(next(exported.glob('*.py'))),
                str(exported / 'iter_2_student.pth'), str(out), *tiny_run['val_images']])
    plain = torch.load(out, weights_only=True)
    assert plain['classes'] == list(CLASSES)
    assert all(len(scores) > 0 for _, scores, _ in plain['preds'])

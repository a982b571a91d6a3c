"""tools/train.py end to end: training writes a student export that plain mmdet loads."""
import json
import math
import sys

import torch
from mmdet.apis import inference_detector
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from vkd_mmdet.testing import CLASSES
from vkd_mmdet.utils import trusted_checkpoints

from .conftest import run_python, student_state, tool_main

# Runs in a fresh interpreter that never imports vkd_mmdet: loads the export with mmdet only.
LOAD_WITH_MMDET = """
import sys
import torch
from mmdet.apis import inference_detector, init_detector
cfg_path, ckpt_path, out, *images = sys.argv[1:]
torch.load(ckpt_path, weights_only=True)
model = init_detector(cfg_path, ckpt_path, device='cpu')
results = [inference_detector(model, image).pred_instances for image in images]
assert not [name for name in sys.modules if name.startswith('vkd_mmdet')], 'vkd_mmdet imported'
torch.save(dict(classes=list(model.dataset_meta['classes']),
                preds=[(r.bboxes, r.scores, r.labels) for r in results]), out)
"""


def test_train_exports_a_student_that_mmdet_alone_loads(tiny_run, tmp_path):
    work_dir = tmp_path / 'work'
    runner = tool_main('train')([
        tiny_run['config'], '--work-dir', str(work_dir), '--cfg-options',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.save_best=coco/bbox_mAP',
        'experiment_name=train_export', 'visualizer.name=train_export'])
    assert runner.iter == 4

    # Losses were finite, the distillation loss among them.
    scalars = next(work_dir.glob('*/vis_data/scalars.json'))
    logs = [json.loads(line) for line in scalars.read_text().splitlines()]
    train_logs = [log for log in logs if 'loss' in log]
    assert [log['iter'] for log in train_logs] == [1, 2, 3, 4]
    assert all(math.isfinite(log['loss']) and math.isfinite(log['loss_vkd_p3'])
               for log in train_logs)

    # The hook exported the final and the best checkpoint.
    exported = sorted(p.name for p in (work_dir / 'student').iterdir())
    best = [name for name in exported if name.startswith('best_coco_bbox_mAP_iter_')]
    assert 'iter_4_student.pth' in exported and len(best) == 1
    assert 'tiny_vkd_retinanet_student.py' in exported
    cfg_path = str(work_dir / 'student' / 'tiny_vkd_retinanet_student.py')
    ckpt_path = str(work_dir / 'student' / 'iter_4_student.pth')
    with open(cfg_path) as f:
        cfg_text = f.read()
    assert 'vkd_mmdet' not in cfg_text and 'Distiller' not in cfg_text
    assert 'ExportStudentHook' not in cfg_text and 'CocoMetric' in cfg_text

    # mmdet's key names, the student's weights only, safe to load.
    exported_state = torch.load(ckpt_path, weights_only=True)['state_dict']
    expected = student_state(str(work_dir / 'iter_4.pth'))
    assert exported_state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(exported_state[key], value), key

    # Same predictions as the distiller, from a process that never imports vkd_mmdet.
    out = tmp_path / 'preds.pt'
    run_python(['-c', LOAD_WITH_MMDET, cfg_path, ckpt_path, str(out), *tiny_run['val_images']])
    plain = torch.load(out, weights_only=True)
    cfg = Config.fromfile(tiny_run['config'])
    distiller = MODELS.build(cfg.model)
    with trusted_checkpoints():  # the distiller's own training checkpoint
        load_checkpoint(distiller, str(work_dir / 'iter_4.pth'), map_location='cpu')
    distiller.cfg = cfg
    distiller.eval()
    assert plain['classes'] == list(CLASSES)
    for image, (bboxes, scores, labels) in zip(tiny_run['val_images'], plain['preds']):
        reference = inference_detector(distiller, image).pred_instances
        assert len(scores) > 0
        torch.testing.assert_close(bboxes, reference.bboxes)
        torch.testing.assert_close(scores, reference.scores)
        assert torch.equal(labels, reference.labels)
    assert 'vkd_mmdet' in sys.modules  # the comparison above did use the plugin

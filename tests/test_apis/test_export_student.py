"""export_student's pieces: the student checkpoint is safe-loadable, the config plugin-free."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.apis import inference_detector, init_detector
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401  (registers the plugin types)
from vkd_mmdet.apis import export_student, student_checkpoint, student_config
from vkd_mmdet.testing import save_random_checkpoint
from vkd_mmdet.utils import resolve_model_cfg


def test_student_checkpoint_keeps_student_weights_and_plain_meta(tmp_path):
    weight = torch.randn(3, 2)
    checkpoint = dict(
        meta=dict(epoch=1, seed=np.int64(7), dataset_meta=dict(classes=('a', 'b')),
                  buffer=HistoryBuffer(), nested=[1, HistoryBuffer(), 'x'], cfg='distiller'),
        state_dict={'student.backbone.w': weight, 'distill_losses.vkd.0.p': torch.ones(1)},
        message_hub=dict(log_scalars=HistoryBuffer()),
        optimizer=dict(state={}))
    exported = student_checkpoint(checkpoint, config_text='student cfg')
    assert set(exported) == {'meta', 'state_dict'}
    assert list(exported['state_dict']) == ['backbone.w']
    assert torch.equal(exported['state_dict']['backbone.w'], weight)
    assert exported['meta'] == dict(epoch=1, seed=7, dataset_meta=dict(classes=('a', 'b')),
                                    nested=[1, 'x'], cfg='student cfg')
    torch.save(exported, tmp_path / 'student.pth')
    loaded = torch.load(tmp_path / 'student.pth', weights_only=True)
    assert loaded['meta']['dataset_meta']['classes'] == ('a', 'b')

    with pytest.raises(KeyError, match='student'):
        student_checkpoint(dict(state_dict={'backbone.w': weight}))


def _distiller_cfg(**extra) -> Config:
    model = dict(type='DetectionDistiller', student=dict(type='RetinaNet', neck=dict()),
                 teacher=dict(type='RetinaNet'), teacher_ckpt='t.pth')
    return Config(dict(model=model, default_scope='mmdet',
                       custom_imports=dict(imports=['vkd_mmdet', 'other_pkg']),
                       custom_hooks=[dict(type='ExportStudentHook'),
                                     dict(type='EMAHook')], **extra))


def test_student_config_drops_the_plugin_and_keeps_the_rest():
    cfg = student_config(_distiller_cfg(train_dataloader=dict(batch_size=2)))
    assert cfg.model == dict(type='RetinaNet', neck=dict())
    assert cfg.custom_imports.imports == ['other_pkg']
    assert cfg.custom_hooks == [dict(type='EMAHook')]
    assert cfg.train_dataloader == dict(batch_size=2)
    assert 'Distiller' not in cfg.pretty_text and 'vkd_mmdet' not in cfg.pretty_text


def test_student_config_errors_name_the_key():
    with pytest.raises(ValueError, match='cfg.val_evaluator.loss'):
        student_config(_distiller_cfg(val_evaluator=dict(loss=dict(type='VkDLoss'))))
    with pytest.raises(ValueError, match='model: expected a distiller'):
        student_config(Config(dict(model=dict(type='RetinaNet'))))


def test_mask_rcnn_student_exports_with_its_mask_head_and_predicts_masks(tmp_path):
    """configs/vkd/mask_rcnn_r101_r50.py: plain mmdet loads the exported student (every key, the
    mask head's included) and predicts the distiller's boxes and masks."""
    init_default_scope('mmdet')
    path = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'vkd', 'mask_rcnn_r101_r50.py')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({'model.student.backbone.init_cfg': None,
                         'model.teacher.backbone.init_cfg': None})
    cfg.model.teacher_ckpt = save_random_checkpoint(
        resolve_model_cfg(cfg.model.teacher, 'teacher'), str(tmp_path / 'teacher.pth'))
    distiller = MODELS.build(cfg.model)
    optim_wrapper = OptimWrapper(torch.optim.SGD(distiller.parameters(), lr=0.01))
    distiller.train_step(demo_mm_inputs(1, [(3, 64, 96)], num_items=[2], with_mask=True),
                         optim_wrapper)
    torch.save({'state_dict': distiller.state_dict(), 'meta': {}}, tmp_path / 'iter_1.pth')
    cfg_path, ckpt_path = export_student(cfg, str(tmp_path / 'iter_1.pth'), str(tmp_path / 'out'))

    student_cfg = Config.fromfile(cfg_path)
    assert student_cfg.model.type == 'MaskRCNN' and 'custom_imports' not in student_cfg
    # A small test image and no score threshold: a random model still predicts (5) instances.
    student_cfg.test_dataloader.dataset.pipeline[1].scale = (96, 64)
    student_cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=5)
    plain = init_detector(student_cfg, ckpt_path, device='cpu')
    exported = torch.load(ckpt_path, weights_only=True)['state_dict']
    assert exported.keys() == plain.state_dict().keys()
    assert any(key.startswith('roi_head.mask_head.') for key in exported)

    distiller.cfg = student_cfg
    distiller.student.test_cfg.rcnn.update(score_thr=0.0, max_per_img=5)
    distiller.eval()
    image = np.random.RandomState(0).randint(0, 255, (64, 96, 3), dtype=np.uint8)
    ours = inference_detector(plain, image).pred_instances
    reference = inference_detector(distiller, image).pred_instances
    assert ours.masks.shape[0] > 0 and ours.masks.shape[1:] == (64, 96)
    torch.testing.assert_close(ours.bboxes, reference.bboxes)
    assert torch.equal(ours.masks, reference.masks)

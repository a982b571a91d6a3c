"""export_student's pieces: the student checkpoint is safe-loadable, the config plugin-free."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

import vkd_mmdet  # noqa: F401  (registers the plugin types)
from vkd_mmdet.apis import student_checkpoint, student_config


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

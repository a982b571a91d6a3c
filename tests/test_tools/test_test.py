"""tools/test.py: the distiller's student by default, the teacher alone with --teacher."""
import pickle

import pytest
import torch
from mmdet.apis import inference_detector, init_detector
from mmdet.registry import MODELS
from mmengine.config import Config

from vkd_mmdet.utils import UnsafeCheckpointError

from .conftest import tool_main


class Payload:
    """An arbitrary pickled object: what the safe loader refuses."""


def _plain_predictions(tiny_run, model_cfg: dict, checkpoint: str) -> dict:
    """Predictions of a plain mmdet detector (mmdet's own inference API) per image path."""
    cfg = Config.fromfile(tiny_run['config'])
    cfg.model = model_cfg
    model = init_detector(cfg, checkpoint, device='cpu')
    return {image: inference_detector(model, image).pred_instances
            for image in tiny_run['val_images']}


def _assert_same(dumped: str, reference: dict) -> None:
    with open(dumped, 'rb') as f:
        results = pickle.load(f)
    assert sorted(r['img_path'] for r in results) == sorted(reference)
    for result in results:
        expected = reference[result['img_path']]
        assert len(expected.scores) > 0
        for key in ('bboxes', 'scores', 'labels'):
            torch.testing.assert_close(result['pred_instances'][key], getattr(expected, key))


def test_teacher_flag_evaluates_the_teacher_alone(tiny_run, tmp_path):
    out = tmp_path / 'teacher.pkl'
    metrics = tool_main('test')([tiny_run['config'], '--teacher', '--out', str(out),
                                 '--work-dir', str(tmp_path), '--cfg-options',
                                 'experiment_name=test_teacher'])
    assert 'coco/bbox_mAP' in metrics
    _assert_same(str(out), _plain_predictions(tiny_run, tiny_run['teacher'],
                                              tiny_run['teacher_ckpt']))


def test_default_evaluates_the_student(tiny_run, tmp_path):
    cfg = Config.fromfile(tiny_run['config'])
    distiller = MODELS.build(cfg.model)
    torch.save(dict(state_dict=distiller.state_dict()), tmp_path / 'distiller.pth')
    student = {k[len('student.'):]: v for k, v in distiller.state_dict().items()
               if k.startswith('student.')}
    torch.save(dict(state_dict=student), tmp_path / 'student.pth')

    out = tmp_path / 'student.pkl'
    tool_main('test')([tiny_run['config'], str(tmp_path / 'distiller.pth'), '--out', str(out),
                       '--work-dir', str(tmp_path), '--cfg-options',
                       'experiment_name=test_student'])
    _assert_same(str(out), _plain_predictions(tiny_run, tiny_run['student'],
                                              str(tmp_path / 'student.pth')))


def test_teacher_checkpoint_needing_pickle_is_refused_unless_trusted(tiny_run, tmp_path):
    unsafe = tmp_path / 'unsafe_teacher.pth'
    state = torch.load(tiny_run['teacher_ckpt'], weights_only=True)['state_dict']
    torch.save(dict(state_dict=state, payload=Payload()), unsafe)
    args = [tiny_run['config'], str(unsafe), '--teacher', '--work-dir', str(tmp_path),
            '--cfg-options']
    with pytest.raises(UnsafeCheckpointError, match='teacher_ckpt_trusted=True'):
        tool_main('test')([*args, 'experiment_name=unsafe_refused'])
    metrics = tool_main('test')([*args, 'model.teacher_ckpt_trusted=True',
                                 'experiment_name=unsafe_trusted'])
    assert 'coco/bbox_mAP' in metrics

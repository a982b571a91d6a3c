"""tools/deploy_student.py on the tiny RetinaNet distiller: the README's command writes the
student export and the ONNX model, prints the agreement, and exits with 1 on a disagreement.
Needs the [deploy] extra, which both pinned stacks install (tests/test_deploy says more)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv import imwrite
from mmdet.registry import MODELS

from .conftest import tool_main

#: As in tests/test_deploy: boxes of zero size kept and every (anchor, class) pair before NMS
#: (64 x 96 at stride 8, 9 anchors, 3 classes), where mmdeploy's graph differs from mmdet by
#: design (README, "Deploy the student").
LIKE_THE_GRAPH = ['--cfg-options', 'model.student.test_cfg.min_bbox_size=-1',
                  f'model.student.test_cfg.nms_pre={8 * 12 * 9 * 3}']


@pytest.fixture
def distiller_checkpoint(tiny_run, tmp_path) -> str:
    """A checkpoint as a distiller run writes it (``student.*`` keys), random student."""
    torch.manual_seed(0)
    student = MODELS.build(tiny_run['student'])
    path = str(tmp_path / 'iter_4.pth')
    torch.save({'state_dict': {f'student.{k}': v for k, v in student.state_dict().items()},
                'meta': {}}, path)
    return path


def test_deploy_student_agrees_on_unpadded_images(tiny_run, distiller_checkpoint, tmp_path,
                                                  capsys):
    images = [str(tmp_path / f'{i}.png') for i in range(2)]
    for i, path in enumerate(images):  # the test pipeline's size (96 x 64): nothing is padded
        imwrite(np.random.RandomState(i).randint(0, 256, (64, 96, 3), dtype=np.uint8), path)
    work_dir = tmp_path / 'deploy'
    deployment = tool_main('deploy_student')([tiny_run['config'], distiller_checkpoint,
                                              str(work_dir), '--images', *images,
                                              *LIKE_THE_GRAPH])
    assert deployment.onnx == str(work_dir / 'onnx' / 'end2end.onnx')
    assert osp.isfile(deployment.onnx)
    assert deployment.checkpoint == str(work_dir / 'student' / 'iter_4_student.pth')
    assert [a.num_matched for a in deployment.agreements] == [100, 100]  # max_per_img each
    out = capsys.readouterr().out
    assert 'image 1: 100 of 100 reference / 100 detections matched' in out
    assert out.rstrip().endswith(': AGREE')


def test_deploy_student_reports_the_padded_clip(tiny_run, distiller_checkpoint, tmp_path,
                                                capsys):
    """The test set's images (the default) are resized below the batch's padded size: the graph
    clips boxes to the padded input, mmdet to the image. The tool says so and exits with 1."""
    with pytest.raises(SystemExit) as exit_info:
        tool_main('deploy_student')([tiny_run['config'], distiller_checkpoint,
                                     str(tmp_path / 'deploy'), '--num-images', '1',
                                     *LIKE_THE_GRAPH])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert 'image 0:' in out and 'DISAGREE' in out and 'padded' in out

"""tools/deploy_student.py on the tiny RetinaNet distiller: the README's command writes the
student export and the ONNX model, prints the agreement on the test set's images, and exits with
1 when the tolerances are not met."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS

from .conftest import tool_main


@pytest.fixture
def distiller_checkpoint(tiny_run, tmp_path) -> str:
    """A checkpoint as a distiller run writes it (``student.*`` keys), random student."""
    torch.manual_seed(0)
    student = MODELS.build(tiny_run['student'])
    path = str(tmp_path / 'iter_4.pth')
    torch.save({'state_dict': {f'student.{k}': v for k, v in student.state_dict().items()},
                'meta': {}}, path)
    return path


def test_deploy_student_prints_the_agreement_and_fails_beyond_tolerance(
        tiny_run, distiller_checkpoint, tmp_path, capsys):
    main = tool_main('deploy_student')
    work_dir = tmp_path / 'deploy'
    # The test set's first 2 images (the default source of images). The numbers are checked in
    # tests/test_deploy; here the tool's plumbing, with tolerances this random model meets (its
    # tail detections differ: open, README).
    deployment = main([tiny_run['config'], distiller_checkpoint, str(work_dir),
                       '--num-images', '2', '--min-matched', '0.5', '--box-atol', '100'])
    out = capsys.readouterr().out
    assert osp.isfile(work_dir / 'onnx' / 'end2end.onnx') == osp.isfile(deployment.onnx)
    assert osp.isfile(work_dir / 'student' / 'iter_4_student.pth')
    assert len(deployment.agreements) == 2
    assert 'image 1:' in out and out.rstrip().endswith('AGREE')
    assert all(a.num_matched > 0 for a in deployment.agreements)

    with pytest.raises(SystemExit) as exit_info:  # a tolerance nothing meets
        main([tiny_run['config'], distiller_checkpoint, str(tmp_path / 'again'),
              '--images', *tiny_run['val_images'][:1], '--score-atol', '-1'])
    assert exit_info.value.code == 1
    assert capsys.readouterr().out.rstrip().endswith('DISAGREE')

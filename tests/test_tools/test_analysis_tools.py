"""mmdet's analysis routes on our configs: get_flops on the exported student, print_config with
the resolved student and teacher, and a log summary over our loss keys."""
import glob
import json
import re

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import get_installed_path

from .conftest import REPO, run_python, tool_main


@pytest.fixture(scope='module')
def trained(tiny_run, tmp_path_factory) -> str:
    """Work dir of a 4-iteration tiny VkD run (with the student exported to <work_dir>/student).

    A fresh process: in this one, mmengine's visualizer instance of an earlier test's Runner
    would write the scalar log into that Runner's work dir.
    """
    work_dir = str(tmp_path_factory.mktemp('analysis') / 'vkd')
    run_python([str(REPO / 'tools' / 'train.py'), tiny_run['config'], '--work-dir', work_dir])
    return work_dir


def test_mmdet_get_flops_on_the_exported_student(trained, tiny_run):
    (config,) = glob.glob(f'{trained}/student/*_student.py')
    get_flops = f'{get_installed_path("mmdet")}/.mim/tools/analysis_tools/get_flops.py'
    out = run_python([get_flops, config, '--num-images', '1']).stdout
    init_default_scope('mmdet')
    params = sum(p.numel() for p in MODELS.build(tiny_run['student']).parameters())
    assert re.search(r'Flops: [\d.]+[KMG]', out)
    assert f'Params: {params / 1e6:.3f}M' in out  # the student's own, no teacher, no projector


def test_print_config_resolves_student_and_teacher():
    config = str(REPO / 'configs' / 'vkd' / 'faster_rcnn_r101_r18.py')
    plain = run_python([str(REPO / 'tools' / 'misc' / 'print_config.py'), config]).stdout
    resolved = run_python([str(REPO / 'tools' / 'misc' / 'print_config.py'), config,
                           '--resolve']).stdout
    assert 'cfg_path' in plain and 'cfg_path' not in resolved
    teacher = Config.fromfile(
        f'{get_installed_path("mmdet")}/.mim/configs/faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py')
    assert teacher.model.backbone.depth == 101
    assert re.search(r'student=dict\(.*?backbone=dict\(.*?depth=18,', resolved, re.S)
    assert re.search(r'teacher=dict\(.*?backbone=dict\(.*?depth=101,', resolved, re.S)
    assert "type='RPNHead'" in resolved.split('teacher=dict(')[1]  # the whole teacher model


def test_analyze_logs_summarises_our_loss_keys(trained, tmp_path):
    (log,) = glob.glob(f'{trained}/*/vis_data/scalars.json')
    out = tmp_path / 'curves.png'
    summary = tool_main('analysis/analyze_logs')([log, '--out', str(out)])
    with open(log) as f:
        steps = [json.loads(line) for line in f if '"loss"' in line]
    p3 = [step['loss_vkd_p3'] for step in steps]
    assert len(p3) == 4 and summary['loss_vkd_p3']['mean'] == pytest.approx(sum(p3) / 4)
    assert {f'loss_vkd_p{k}' for k in range(3, 8)} | {'loss_cls', 'loss_bbox'} <= set(summary)
    assert out.stat().st_size > 0
    with pytest.raises(KeyError, match='loss_nd'):
        tool_main('analysis/analyze_logs')([log, '--keys', 'loss_nd'])

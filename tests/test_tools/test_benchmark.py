"""tools/benchmark.py runs end to end on a tiny distiller config and reports every field."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from vkd_mmdet.testing import tiny_detector_cfg

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={student!r},
    teacher={teacher!r},
    teacher_ckpt='https://download.openmmlab.com/never-downloaded.pth',
    distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16, out_channels=32),
                        vkd_tall=dict(type='VkDLoss', in_channels=16, out_channels=32,
                                      orthogonal_map='cayley', levels=[0, 1])))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{'projector': dict(decay_mult=0.0)}}))
"""


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark', REPO / 'tools' / 'benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_config(tmp_path) -> str:
    student = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', base_channels=8,
                                neck_channels=16)
    teacher = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', base_channels=8,
                                neck_channels=32, depth=34)
    path = tmp_path / 'tiny_vkd.py'
    path.write_text(CONFIG.format(student=student.to_dict(), teacher=teacher.to_dict()))
    return str(path)


def test_benchmark_writes_every_field(tiny_config, tmp_path):
    out = tmp_path / 'bench' / 'result.json'
    threads = torch.get_num_threads()
    try:
        returned = _load_tool().main([tiny_config, '--iters', '2', '--warmup', '1', '--batch',
                                      '2', '--size', '64', '96', '--threads', '1',
                                      '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    variants = {'student', 'teacher', 'distill', 'losses'}
    for key in ('median_s', 'spread_s', 'times_s', 'peak_mib'):
        assert set(result[key]) == variants
    assert all(len(values) == 2 and min(values) > 0 for values in result['times_s'].values())
    median = result['median_s']
    assert result['overhead_ratio'] == pytest.approx(
        median['distill'] / (median['student'] + median['teacher']))
    assert result['distill_loss_share'] == pytest.approx(median['losses'] / median['distill'])
    assert 0 < result['distill_loss_share'] < 1
    # The distillation step does strictly more than the student step.
    assert median['distill'] > median['student']
    # 5 levels of `vkd` + 2 of `vkd_tall`: one weight map per projector and step.
    assert result['num_projectors'] == 7
    assert result['projector_maps_per_step'] == 7
    assert result['peak_mib']['distill'] >= 0
    assert result['size'] == [64, 96] and result['batch'] == 2 and result['iters'] == 2
    assert result['markdown_row'].startswith('| tiny_vkd.py |')
    assert result['markdown_row'].count('|') == 10

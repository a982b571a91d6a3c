"""tools/benchmark.py on a tiny distiller config: both teacher paths, their error, the ratios."""
import json
import statistics

import pytest
import torch
from tool_scripts import load_tool

from vkd_mmdet.testing import tiny_detector_cfg

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


@pytest.fixture
def tiny_config(tmp_path) -> str:
    student = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', base_channels=8,
                                neck_channels=16)
    teacher = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', base_channels=8,
                                neck_channels=32, depth=34)
    path = tmp_path / 'tiny_vkd.py'
    path.write_text(CONFIG.format(student=student.to_dict(), teacher=teacher.to_dict()))
    return str(path)


@pytest.mark.parametrize('precision', ['bf16', 'fp32'])
def test_benchmark_reports_both_teacher_paths_and_the_ratios(tiny_config, tmp_path, precision):
    out = tmp_path / 'bench' / 'result.json'
    threads = torch.get_num_threads()
    try:
        load_tool('benchmark.py').main([tiny_config, '--iters', '5', '--warmup', '1',
                                        '--batch', '2', '--size', '64', '96', '--threads', '1',
                                        '--teacher-precision', precision, '--out', str(out)])
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    assert result['teacher_precision'] == precision
    variants = {'student', 'teacher', 'teacher_fast', 'distill', 'losses'}
    for key in ('median_s', 'spread_s', 'times_s', 'peak_mib'):
        assert set(result[key]) == variants
    assert all(len(times) == 5 for times in result['times_s'].values())
    # The ratios as vkd_mmdet.testing.benchmark defines them, from the timed rounds.
    median = {name: statistics.median(times) for name, times in result['times_s'].items()}
    peak = result['peak_mib']
    expected = dict(
        overhead_ratio=median['distill'] / (median['student'] + median['teacher']),
        fast_overhead_ratio=median['distill'] / (median['student'] + median['teacher_fast']),
        teacher_ratio=median['teacher_fast'] / median['teacher'],
        distill_loss_share=median['losses'] / median['distill'],
        memory_ratio=peak['distill'] / max(peak['student'] + peak['teacher'], 1e-9))
    assert {key: result[key] for key in expected} == pytest.approx(expected)
    # The distillation step runs the losses' forward and backward and a student step besides.
    assert median['distill'] > median['losses']
    # The fast teacher's features against the plain fp32 ones: bf16 rounding (~3 significant
    # digits) when asked for, float32 rounding of the fold and the layout otherwise.
    if precision == 'bf16':
        assert 1e-4 < result['teacher_rel_error'] < 5e-2
    else:
        assert result['teacher_rel_error'] < 1e-5
    # 5 levels of `vkd` + 2 of `vkd_tall`: one weight map per projector and step.
    assert result['num_projectors'] == 7
    assert result['projector_maps_per_step'] == 7
    assert result['markdown_row'].startswith('| tiny_vkd.py |')
    assert f"| {precision} |" in result['markdown_row']

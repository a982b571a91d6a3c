"""tools/benchmark.py on a tiny distiller config: both teacher paths, their error, the ratios
with their intervals, the stop rule, the breakdown of the step."""
import json
import math
import statistics

import pytest
import scipy.stats
import torch
from tool_scripts import load_tool

from vkd_mmdet.testing import tiny_detector_cfg
from vkd_mmdet.testing.step_breakdown import PHASES

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
                                      projector=dict(type='OrthogonalProjector',
                                                     orthogonal_map='cayley'),
                                      levels=[0, 1])))
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


def _run(tiny_config, out, *args):
    threads = torch.get_num_threads()
    try:
        load_tool('benchmark.py').main([tiny_config, '--batch', '2', '--size', '64', '96',
                                        '--threads', '1', '--out', str(out), *args])
    finally:
        torch.set_num_threads(threads)
    return json.loads(out.read_text())


def _t_interval(ratios):
    """Mean and 95 % Student-t half-width, written out (an independent computation)."""
    n = len(ratios)
    mean = sum(ratios) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / (n - 1))
    return mean, scipy.stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)


@pytest.mark.parametrize('precision', ['bf16', 'fp32'])
def test_benchmark_reports_both_teacher_paths_the_ratios_and_the_breakdown(tiny_config, tmp_path,
                                                                           precision, capsys):
    result = _run(tiny_config, tmp_path / 'bench' / 'result.json', '--iters', '5', '--warmup',
                  '1', '--teacher-precision', precision, '--breakdown-iters', '1')
    assert result['teacher_precision'] == precision
    variants = {'student', 'teacher', 'teacher_fast', 'distill', 'losses'}
    for key in ('median_s', 'spread_s', 'times_s', 'peak_mib'):
        assert set(result[key]) == variants
    assert all(len(times) == 5 for times in result['times_s'].values())
    assert (result['rounds'], result['stop_reason']) == (5, 'iters')
    # Each ratio: the mean of its per-round ratios, with a t-interval over the rounds.
    t = result['times_s']
    per_round = dict(
        overhead_ratio=[c / (a + b) for a, b, c in zip(t['student'], t['teacher'], t['distill'])],
        fast_overhead_ratio=[c / (a + b) for a, b, c in
                             zip(t['student'], t['teacher_fast'], t['distill'])],
        parts_ratio=[c / (a + b + d) for a, b, c, d in
                     zip(t['student'], t['teacher_fast'], t['distill'], t['losses'])],
        teacher_ratio=[b / a for a, b in zip(t['teacher'], t['teacher_fast'])],
        distill_loss_share=[d / c for c, d in zip(t['distill'], t['losses'])])
    assert set(result['ratios']) == set(per_round)
    for name, ratios in per_round.items():
        mean, half = _t_interval(ratios)
        assert result[name] == pytest.approx(mean)
        got = result['ratios'][name]
        assert (got['mean'], got['half_width'], got['low'], got['high']) == pytest.approx(
            (mean, half, mean - half, mean + half)), name
    peak = result['peak_mib']
    assert result['memory_ratio'] == pytest.approx(
        peak['distill'] / max(peak['student'] + peak['teacher'], 1e-9))
    median = {name: statistics.median(times) for name, times in t.items()}
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
    breakdown = result['breakdown']
    assert breakdown['projector_maps_per_step'] == 7
    assert set(breakdown['mean_s']) == set(PHASES)
    assert all(value >= 0 for value in breakdown['mean_s'].values())
    assert breakdown['step_s'] == pytest.approx(sum(breakdown['mean_s'].values()))
    for phase in ('teacher_forward', 'student_forward', 'projector_maps', 'distill_losses',
                  'projector_maps_backward', 'distill_losses_backward', 'backward',
                  'optimizer_step'):
        assert breakdown['mean_s'][phase] > 0, phase
    assert result['markdown_row'].startswith('| tiny_vkd.py |')
    assert f"| {precision} | 5 (iters) |" in result['markdown_row']
    printed = capsys.readouterr().out
    assert result['markdown_row'] in printed
    assert f'| tiny_vkd.py {precision} ms (share) |' in printed


def test_benchmark_stops_at_the_time_limit_and_says_so(tiny_config, tmp_path, capsys):
    out = tmp_path / 'result.json'
    # A target no machine reaches and a budget of a millisecond: the two rounds an interval
    # needs, then the limit.
    result = _run(tiny_config, out, '--iters', '3', '--warmup', '0', '--target-ci', '1e-9',
                  '--time-limit', '0.001', '--breakdown-iters', '0')
    assert (result['rounds'], result['stop_reason']) == (2, 'time_limit')
    assert result['target_reached'] is False and result['breakdown'] is None
    assert all(len(times) == 2 for times in result['times_s'].values())
    printed = capsys.readouterr().out
    assert 'not reached: stopped by time_limit after 2 rounds' in printed
    assert '| 2 (time_limit) |' in result['markdown_row']
    # The saved result prints again as a table row without measuring anything.
    load_tool('benchmark.py').main(['--tables', str(out)])
    assert result['markdown_row'] in capsys.readouterr().out


def test_benchmark_needs_a_config_or_tables():
    with pytest.raises(SystemExit):
        load_tool('benchmark.py').parse_args([])


def test_head_losses_time_the_teacher_head_in_both_teacher_forwards(tmp_path, monkeypatch):
    # CrossKD + VkD on tiny GFL detectors: (b) and (b') each run the teacher's head once, the
    # student step its own head; CrossKD's cross-head pass runs the teacher's head (from the cut
    # on) once more, in the distillation step and in (d), which times the head loss on a
    # recorded step (gradients reach CrossKD's 1x1 maps) besides VkD's levels.
    from mmdet.models.dense_heads import GFLHead
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from vkd_mmdet.testing import benchmark

    init_default_scope('mmdet')
    heads = [tiny_detector_cfg('gfl/gfl_r50_fpn_1x_coco.py', base_channels=b, neck_channels=n)
             for b, n in ((8, 16), (8, 32))]
    for head in heads:
        head.bbox_head.update(stacked_convs=2, norm_cfg=dict(type='GN', num_groups=4))
    cfg = Config(dict(model=dict(
        type='DetectionDistiller', student=heads[0].to_dict(), teacher=heads[1].to_dict(),
        teacher_ckpt='unused.pth',
        distill_losses=dict(crosskd=dict(type='CrossKDLoss', tower_conv=1),
                            vkd=dict(type='VkDLoss', in_channels=16, out_channels=32))),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=1e-3)),
        custom_imports=dict(imports=['vkd_mmdet'])))
    import vkd_mmdet  # noqa: F401  (registers the distiller)
    model, plain_teacher = benchmark._build(cfg, str(tmp_path), 0, torch.device('cpu'))
    optims = [build_optim_wrapper(m, cfg.optim_wrapper) for m in (model, model.student)]
    data = benchmark.demo_mm_inputs(2, [(3, 64, 96)] * 2, num_items=[3] * 2, num_classes=2)
    steps = benchmark.step_functions(model, plain_teacher, *optims, data)

    calls = []
    forward = GFLHead.forward
    monkeypatch.setattr(GFLHead, 'forward', lambda self, x: calls.append(self) or forward(self, x))
    teacher_heads = {id(plain_teacher.bbox_head), id(model.teacher.bbox_head)}
    expected = dict(student=(1, 0), teacher=(0, 1), teacher_fast=(0, 1), distill=(1, 2),
                    losses=(0, 1))
    for name, (student_calls, teacher_calls) in expected.items():
        calls.clear()
        model.zero_grad(set_to_none=True)
        steps[name]()
        assert (sum(id(h) not in teacher_heads for h in calls),
                sum(id(h) in teacher_heads for h in calls)) == (student_calls, teacher_calls), name
    maps = model.distill_losses['crosskd'][0].projectors
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in maps.parameters())
    # The breakdown times the head losses and their backward as phases of their own.
    breakdown = benchmark.step_breakdown(model, optims[0], data, 1)
    assert breakdown['mean_s']['head_losses'] > 0
    assert breakdown['mean_s']['head_losses_backward'] > 0

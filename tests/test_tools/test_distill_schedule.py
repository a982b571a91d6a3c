"""DistillLossScheduleHook: a linear warm-up of the distillation weight, resumed mid-ramp, ends
with the uninterrupted run's student."""
import re

import pytest

from vkd_mmdet.engine.hooks import DistillLossScheduleHook

from .conftest import (
    NO_VAL,
    assert_resumed_like_uninterrupted,
    probe_config,
    student_state,
    tool_main,
)

# Warm-up over iterations 1-4 (0-based): factors 0, 0, 1/3, 2/3 in the 4 iterations.
RAMP = "[dict(type='DistillLossScheduleHook', schedules={'*': dict(policy='linear', begin=1, " \
    "end=4)})]"


def _expected_factor(iteration: int) -> float:
    return min(max((iteration - 1) / 3, 0.0), 1.0)


def _logged(work_dir, key: str) -> dict:
    """``{iteration: value}`` of ``key`` in the run's text log."""
    text = next(work_dir.glob('*/*.log')).read_text()
    return {int(match[0]): float(match[1]) for match in re.findall(
        rf'Iter\(train\) \[(\d+)/\d+\].*?\b{key}: ([-\d.e+]+)', text)}


def test_resume_across_a_ramp_is_exact(tiny_run, tmp_path, one_thread):
    config = probe_config(tiny_run, 'ramp', RAMP)
    full_dir = tmp_path / 'full'
    tool_main('train')([config, '--work-dir', str(full_dir), '--cfg-options', *NO_VAL,
                        'experiment_name=ramp_full'])
    # The logged factors follow the schedule; a factor of 0 logs a zero distillation loss.
    factors = _logged(full_dir, 'distill_factor_vkd')
    assert factors == pytest.approx({i + 1: _expected_factor(i) for i in range(4)}, abs=1e-4)
    assert _logged(full_dir, 'loss_vkd_p3')[1] == 0.0 and _logged(full_dir, 'loss_vkd_p3')[4] > 0

    # Stopped after iteration 2 (factor still 0), resumed: iterations 3-4 ramp as above.
    work_dir = tmp_path / 'resumed'
    tool_main('train')([config, '--work-dir', str(work_dir), '--cfg-options', *NO_VAL,
                        'train_cfg.max_iters=2', 'experiment_name=ramp_first_half'])
    tool_main('train')([config, '--work-dir', str(work_dir), '--resume', '--cfg-options',
                        *NO_VAL, 'experiment_name=ramp_resumed'])
    full = student_state(str(full_dir / 'iter_4.pth'))
    assert_resumed_like_uninterrupted(student_state(str(work_dir / 'iter_4.pth')), full,
                                      student_state(str(work_dir / 'iter_2.pth')))
    # Not vacuous: without the ramp (full weight from the start) the student differs.
    constant_dir = tmp_path / 'constant'
    tool_main('train')([probe_config(tiny_run, 'no_ramp', '[]'), '--work-dir',
                        str(constant_dir), '--cfg-options', *NO_VAL, 'experiment_name=no_ramp'])
    constant = student_state(str(constant_dir / 'iter_4.pth'))
    assert any(not constant[k].equal(v) for k, v in full.items())


@pytest.mark.parametrize('schedule, t, expected', [
    (dict(policy='constant', factor=0.5), 7, 0.5),
    (dict(policy='step', end=280, by_epoch=True), 279, 1.0),
    (dict(policy='step', end=280, by_epoch=True), 280, 0.0),
    (dict(policy='linear', begin=0, end=4), 1, 0.25),
    (dict(policy='linear', begin=2, end=4), 1, 0.0),
    (dict(policy='linear', begin=2, end=4), 9, 1.0),
])
def test_factor(schedule, t, expected):
    by_epoch = schedule.get('by_epoch', False)
    epoch, iteration = (t, 10 * t) if by_epoch else (0, t)
    assert DistillLossScheduleHook.factor(schedule, epoch, iteration) == expected


@pytest.mark.parametrize('schedules, match', [
    ({'*': dict(policy='cosine', end=3)}, r"schedules\.\*\.policy='cosine'"),
    ({'vkd': dict(policy='step', begin=3)}, r"schedules\.vkd \(step\) takes \['end'\]"),
    ({'vkd': dict(policy='linear', begin=4, end=4)}, r'0 <= begin < end'),
    ({}, 'empty'),
])
def test_bad_schedules_are_refused(schedules, match):
    with pytest.raises(ValueError, match=match):
        DistillLossScheduleHook(schedules)

"""The page's account of where the leaderboard's time goes."""
from vkd_mmdet.benchmarks.methods_page import run_minutes


def _run(row, wall_time, train_time, **extra):
    return dict(row=('gfl', row, 1.0), wall_time=wall_time, train_time=train_time, **extra)


def test_run_minutes_splits_iterations_from_the_rest_and_counts_evaluations():
    records = [_run('student', 120.0, 90.0),
               _run('vkd', 240.0, 150.0, eval_time=12.0),
               _run('vkd', 240.0, 150.0, eval_time=18.0)]
    # 600 s = 10 run-minutes, 390 s of them iterations; two re-evaluations, median 15 s
    assert run_minutes(records, jobs=2) == (
        '3 runs, 10 run-minutes (about 5 min at 2 in parallel; 65 % in training iterations, the '
        'rest start-up, checkpoint and evaluation; 2 runs evaluated again on this val set, 15 s '
        'each)')


def test_a_paused_run_costs_what_its_rows_median_run_costs():
    records = [_run('vkd', 60.0, 45.0), _run('vkd', 60.0, 45.0), _run('vkd', 1800.0, 45.0)]
    assert run_minutes(records, jobs=1).startswith('3 runs, 3 run-minutes (about 3 min at 1 in '
                                                   'parallel; 75 % in training iterations')

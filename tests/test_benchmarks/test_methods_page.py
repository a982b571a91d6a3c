"""The page's account of where the leaderboard's time goes."""
from vkd_mmdet.benchmarks.methods_page import run_minutes


def test_run_minutes_splits_iterations_from_the_rest_and_counts_evaluations():
    records = [dict(wall_time=120.0, train_time=90.0),
               dict(wall_time=240.0, train_time=150.0, eval_time=12.0),
               dict(wall_time=240.0, train_time=120.0, eval_time=18.0)]
    # 600 s = 10 run-minutes, 360 s of them iterations; two re-evaluations of 15 s on average
    assert run_minutes(records, jobs=2) == (
        '3 runs, 10 run-minutes (about 5 min at 2 in parallel; 60 % in training iterations, the '
        'rest start-up, checkpoint and evaluation; 2 runs evaluated again on this val set, 15 s '
        'each)')
    assert run_minutes(records[:1], jobs=1).endswith('75 % in training iterations, the rest '
                                                     'start-up, checkpoint and evaluation)')

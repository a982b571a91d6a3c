"""The CPU benchmarks behind ``make demo`` and ``make bench-methods``: the leaderboard's rows as
data, one training run and its record, the teacher cache, the process pool, the tables and pages;
``tools/run_demo.py`` and ``tools/bench_methods.py`` are argparse shells over it. Not imported by
``vkd_mmdet``."""
from .data_splits import SPLITS, add_data_args, data_kwargs, make_tune_split, with_data_root
from .demo import demo_configs, run_demo
from .leaderboard import run_leaderboard, weight_options
from .rows import (
    CENTER_ROWS,
    DIAGNOSIS_REFERENCE,
    DIAGNOSIS_ROWS,
    GRAD_NORM_HOOK,
    GRAD_SUFFIX,
    ND_CONFIG,
    PROXIES,
    ROWS,
    SWEEP_ROWS,
    Proxy,
    Row,
    demo_config_dir,
)
from .teacher_cache import cached_teacher, train_teacher
from .training_run import finished_run, read_scalars, run_key, train

__all__ = [
    'CENTER_ROWS', 'DIAGNOSIS_REFERENCE', 'DIAGNOSIS_ROWS', 'GRAD_NORM_HOOK', 'GRAD_SUFFIX',
    'ND_CONFIG', 'PROXIES', 'ROWS', 'SPLITS', 'SWEEP_ROWS', 'Proxy', 'Row', 'add_data_args',
    'cached_teacher', 'data_kwargs', 'demo_config_dir', 'demo_configs', 'finished_run',
    'make_tune_split', 'read_scalars', 'run_demo', 'run_key', 'run_leaderboard', 'train',
    'train_teacher', 'weight_options', 'with_data_root'
]

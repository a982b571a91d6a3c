"""The CPU benchmarks behind ``make demo`` and ``make bench-methods``: the leaderboard's rows as
data, one training run and its record, the teacher cache, the process pool, the tables (paired or
Welch t-intervals, ranks with ties), the per-seed file and the pages;
``tools/run_demo.py`` and ``tools/bench_methods.py`` are argparse shells over it. Not imported by
``vkd_mmdet``."""
from .config_readmes import README_ROWS, write_config_readmes
from .data_splits import (
    SPLITS,
    add_data_args,
    annotation_digest,
    data_kwargs,
    make_tune_split,
    split_digests,
    with_data_root,
)
from .demo import demo_configs, run_demo
from .leaderboard import run_leaderboard, weight_options
from .methods_report import methods_table, resolution_table
from .per_seed_file import read_per_seed_csv, write_per_seed_csv
from .rows import (
    CENTER_ROWS,
    DIAGNOSIS_REFERENCE,
    DIAGNOSIS_ROWS,
    GRAD_NORM_HOOK,
    GRAD_SUFFIX,
    ND_CONFIG,
    PAGE_PROXIES,
    PROXIES,
    ROWS,
    SWEEP_ROWS,
    Proxy,
    Row,
    demo_config_dir,
)
from .seed_ranges import format_seed_ranges, parse_row_seeds
from .teacher_cache import cached_teacher, teacher_settings, train_teacher
from .training_run import evaluate, finished_run, read_scalars, run_key, startup_lines, train

__all__ = [
    'CENTER_ROWS', 'DIAGNOSIS_REFERENCE', 'DIAGNOSIS_ROWS', 'GRAD_NORM_HOOK', 'GRAD_SUFFIX',
    'ND_CONFIG', 'PAGE_PROXIES', 'PROXIES', 'Proxy', 'README_ROWS', 'ROWS', 'Row', 'SPLITS',
    'SWEEP_ROWS', 'add_data_args', 'annotation_digest', 'cached_teacher', 'data_kwargs',
    'demo_config_dir', 'demo_configs', 'evaluate', 'finished_run', 'format_seed_ranges',
    'make_tune_split', 'methods_table', 'parse_row_seeds', 'read_per_seed_csv', 'read_scalars',
    'resolution_table', 'run_demo', 'run_key', 'run_leaderboard', 'split_digests', 'startup_lines',
    'teacher_settings', 'train', 'train_teacher', 'weight_options', 'with_data_root',
    'write_config_readmes', 'write_per_seed_csv'
]

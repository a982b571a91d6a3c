"""One training run of a demo config with mmengine's ``Runner``, and the record it leaves.

A record (``<work_dir>/record.json``) holds what makes the run the run it is (``config``,
``seed``, ``iters``, ``options``, ``train_set``: :func:`run_key`), its ``name``, ``AP`` and
``AP50`` (COCO box AP of its final validation, or of its re-evaluation: :func:`evaluate`) and the
set they were measured on (``eval_set``), ``train_time`` (training iterations, data loading
included), its ``wall_time`` and ``scalars``: the path of its mmengine ``scalars.json``; a
distilled run's also ``startup_summary``, the summary line of its start-up report
(``StartupReportHook``).
"""
import json
import os
import os.path as osp
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

from ..utils import enable_startup_report, install_safe_loading


def set_iterations(cfg: Config, iters: int) -> None:
    """Rescale the demo configs' iteration schedule (warm-up + cosine) to ``iters``."""
    warmup = max(1, min(cfg.get('warmup_iters', 100), iters // 5))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    warm, cosine = cfg.param_scheduler
    warm.end = warmup
    cosine.update(begin=warmup, end=max(iters, warmup + 1), T_max=max(iters - warmup, 1))


def run_key(config: str, seed: int, iters: int, cfg_options: Optional[dict] = None,
            train_set: Optional[str] = None, teacher: Optional[dict] = None) -> dict:
    """What makes two runs the same run (for ``--reuse-runs``); ``train_set`` identifies the
    training annotations (:func:`~vkd_mmdet.benchmarks.data_splits.annotation_digest`),
    ``teacher`` a distilled run's teacher (the settings it was trained with:
    :func:`~vkd_mmdet.benchmarks.teacher_cache.teacher_settings`): a teacher trained again
    makes its students' runs stale."""
    return dict(config=osp.relpath(config), seed=seed, iters=iters, options=cfg_options or {},
                train_set=train_set, teacher=teacher)


def finished_run(work_dir: str, key: dict) -> Optional[dict]:
    """The record of a finished run in ``work_dir`` made with ``key`` (config, seed, iterations,
    options), or None."""
    record_file = osp.join(work_dir, 'record.json')
    if not osp.isfile(record_file):
        return None
    with open(record_file) as f:
        record = json.load(f)
    return record if {k: record.get(k) for k in key} == key else None


def read_scalars(path: str) -> Tuple[List[dict], dict]:
    """mmengine's ``scalars.json`` (``LocalVisBackend``) of a run: its training entries (one per
    logging interval: window means of every loss, ``time`` per iteration incl. data loading) and
    the metrics of its last validation."""
    train_log, metrics = [], {}
    with open(path) as f:
        for line in f:
            entry = json.loads(line)
            if 'coco/bbox_mAP' in entry:
                metrics = entry
            elif 'loss' in entry:
                train_log.append(entry)
    return train_log, metrics


def _runner_config(config: str, work_dir: str, seed: int, name: str,
                   cfg_options: Optional[dict], teacher_ckpt: Optional[str]) -> Config:
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    # Runs share a process (the demo's, or a worker of the leaderboard's pool): mmengine keeps
    # one visualizer and one logger per name, so each run gets its own names.
    cfg.experiment_name = f'{name}@{osp.abspath(work_dir)}@{time.time_ns()}'
    cfg.visualizer.name = cfg.experiment_name
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    return cfg


def train(config: str, work_dir: str, iters: int, seed: int, name: str,
          cfg_options: Optional[dict] = None, teacher_ckpt: Optional[str] = None,
          reuse: bool = False, train_set: Optional[str] = None,
          eval_set: Optional[str] = None, teacher: Optional[dict] = None) -> dict:
    """Train one config, return its record: metrics, times and its mmengine ``scalars.json``.

    With ``reuse``, a finished run in ``work_dir`` of the same config, seed, iterations,
    options, ``train_set`` and ``teacher`` (the settings of the teacher ``teacher_ckpt`` holds)
    is returned instead of training again (evaluated again if it was measured on another set
    than ``eval_set``, the set the final validation measures).
    """
    key = run_key(config, seed, iters, cfg_options, train_set, teacher)
    if reuse and (record := finished_run(work_dir, key)) is not None:
        if record.get('eval_set') != eval_set:
            print(f'{name} seed {seed}: evaluating {work_dir} again (another evaluation set)')
            return evaluate(config, work_dir, seed, name, eval_set, cfg_options, teacher_ckpt)
        print(f'{name} seed {seed}: reusing {work_dir}')
        return record
    start = time.perf_counter()
    cfg = _runner_config(config, work_dir, seed, name, cfg_options, teacher_ckpt)
    set_iterations(cfg, iters)
    # One logged window per logging interval: the mean logged iteration time is then the mean
    # over all iterations, and scalars.json holds every loss curve (window means).
    cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval, iters)
    cfg.log_processor.window_size = cfg.default_hooks.logger.interval
    enable_startup_report(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    train_log, metrics = read_scalars(scalars)
    record = dict(key, name=name, scalars=osp.relpath(scalars),
                  AP=metrics.get('coco/bbox_mAP', float('nan')),
                  AP50=metrics.get('coco/bbox_mAP_50', float('nan')), eval_set=eval_set,
                  train_time=float(np.mean([e['time'] for e in train_log])) * iters,
                  wall_time=time.perf_counter() - start)
    report = osp.join(work_dir, 'startup_report.json')
    if osp.isfile(report):
        with open(report) as f:
            record['startup_summary'] = json.load(f)['summary']
    write_record(work_dir, record)
    return record


def evaluate(config: str, work_dir: str, seed: int, name: str, eval_set: Optional[str],
             cfg_options: Optional[dict] = None, teacher_ckpt: Optional[str] = None) -> dict:
    """Measure the finished run in ``work_dir`` again (its last checkpoint, mmengine's test loop
    on the configured test set) and update its record: ``AP``, ``AP50``, ``eval_set`` and
    ``eval_time``; its training times stay. Growing the evaluation set costs an evaluation per
    run, not a training."""
    with open(osp.join(work_dir, 'record.json')) as f:
        record = json.load(f)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    start = time.perf_counter()
    cfg = _runner_config(config, work_dir, seed, name + '-eval', cfg_options, teacher_ckpt)
    cfg.load_from = checkpoint
    # The run's own training checkpoint (message hub, ...): loads as a local resume file does.
    install_safe_loading()
    metrics = Runner.from_cfg(cfg).test()
    record.update(AP=metrics['coco/bbox_mAP'], AP50=metrics['coco/bbox_mAP_50'],
                  eval_set=eval_set, eval_time=time.perf_counter() - start)
    write_record(work_dir, record)
    return record


def write_record(work_dir: str, record: dict) -> None:
    """``<work_dir>/record.json``, written whole, then renamed: a run killed here leaves the
    previous record or none."""
    path = osp.join(work_dir, 'record.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f)
    os.replace(path + '.tmp', path)


def startup_lines(records: Sequence[dict]) -> List[str]:
    """``<name> seed <s>: <start-up report summary>`` for every distilled run."""
    return [f'{record["name"]} seed {record["seed"]}: {record["startup_summary"]}'
            for record in records if 'startup_summary' in record]

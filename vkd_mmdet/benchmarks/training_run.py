"""One training run of a demo config with mmengine's ``Runner``, and the record it leaves.

A record (``<work_dir>/record.json``) holds what makes the run the run it is (``config``,
``seed``, ``iters``, ``options``: :func:`run_key`), its ``name``, ``AP`` and ``AP50`` (COCO box AP
of its final validation), ``train_time`` (training iterations, data loading included), its
``wall_time`` and ``scalars``: the path of its mmengine ``scalars.json``.
"""
import json
import os.path as osp
import time
from typing import List, Optional, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner


def set_iterations(cfg: Config, iters: int) -> None:
    """Rescale the demo configs' iteration schedule (warm-up + cosine) to ``iters``."""
    warmup = max(1, min(cfg.get('warmup_iters', 100), iters // 5))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    warm, cosine = cfg.param_scheduler
    warm.end = warmup
    cosine.update(begin=warmup, end=max(iters, warmup + 1), T_max=max(iters - warmup, 1))


def run_key(config: str, seed: int, iters: int, cfg_options: Optional[dict] = None) -> dict:
    """What makes two runs the same run (for ``--reuse-runs``)."""
    return dict(config=osp.relpath(config), seed=seed, iters=iters, options=cfg_options or {})


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


def train(config: str, work_dir: str, iters: int, seed: int, name: str,
          cfg_options: Optional[dict] = None, teacher_ckpt: Optional[str] = None,
          reuse: bool = False) -> dict:
    """Train one config, return its record: metrics, times and its mmengine ``scalars.json``.

    With ``reuse``, a finished run in ``work_dir`` of the same config, seed, iterations and
    options is returned instead of training again.
    """
    key = run_key(config, seed, iters, cfg_options)
    if reuse and (record := finished_run(work_dir, key)) is not None:
        print(f'{name} seed {seed}: reusing {work_dir}')
        return record
    start = time.perf_counter()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    set_iterations(cfg, iters)
    # One logged window per logging interval: the mean logged iteration time is then the mean
    # over all iterations, and scalars.json holds every loss curve (window means).
    cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval, iters)
    cfg.log_processor.window_size = cfg.default_hooks.logger.interval
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    # Runs share a process (the demo's, or a worker of the leaderboard's pool): mmengine keeps
    # one visualizer and one logger per name, so each run gets its own names.
    cfg.experiment_name = f'{name}@{osp.abspath(work_dir)}@{time.time_ns()}'
    cfg.visualizer.name = cfg.experiment_name
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    train_log, metrics = read_scalars(scalars)
    record = dict(key, name=name, scalars=osp.relpath(scalars),
                  AP=metrics.get('coco/bbox_mAP', float('nan')),
                  AP50=metrics.get('coco/bbox_mAP_50', float('nan')),
                  train_time=float(np.mean([e['time'] for e in train_log])) * iters,
                  wall_time=time.perf_counter() - start)
    with open(osp.join(work_dir, 'record.json'), 'w') as f:
        json.dump(record, f)
    return record

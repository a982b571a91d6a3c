"""Benchmark runs in parallel: one spawned process per run, ``jobs`` at a time, each with its own
torch thread count and its output in ``<work_dir>/stdout.log``."""
import os
import os.path as osp
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .teacher_cache import cached_teacher, train_teacher
from .training_run import finished_run, run_key, train


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _quiet(func: Callable[..., dict], task: dict, log_name: str = 'stdout.log') -> dict:
    """``func(**task)`` in a worker process, its output into ``<work_dir>/<log_name>``."""
    os.makedirs(task['work_dir'], exist_ok=True)
    with open(osp.join(task['work_dir'], log_name), 'w') as log:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            return func(**task)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def _pool(jobs: int, threads: int) -> ProcessPoolExecutor:
    # spawn: a fresh interpreter per worker (no forked torch / mmengine state)
    return ProcessPoolExecutor(jobs, mp_context=get_context('spawn'), initializer=_init_worker,
                               initargs=(threads,))


def train_teachers(tasks: Sequence[Tuple[str, dict]], jobs: int,
                   threads: int) -> Dict[str, dict]:
    """The teacher record of every ``(proxy, train_teacher arguments)`` of ``tasks``: cached ones
    measured on the task's ``eval_set`` are read here, the others train (or are evaluated
    again) in parallel, each in its own process."""
    teachers = {proxy: cached_teacher(**{k: v for k, v in task.items() if k != 'eval_set'})
                for proxy, task in tasks}
    missing = [(proxy, task) for proxy, task in tasks if teachers[proxy] is None
               or teachers[proxy].get('eval_set') != task.get('eval_set')]
    if missing:
        with _pool(min(jobs, len(missing)), threads) as pool:
            futures = {proxy: pool.submit(_quiet, train_teacher, task,
                                          'stdout.log' if teachers[proxy] is None else 'eval.log')
                       for proxy, task in missing}
            teachers.update({proxy: future.result() for proxy, future in futures.items()})
    return teachers


def run_all(tasks: List[dict], jobs: int, threads: int, reuse: bool) -> List[dict]:
    """Run ``tasks`` (:func:`~vkd_mmdet.benchmarks.training_run.train` arguments + ``row``),
    ``jobs`` at a time; print one line per finished run with the ETA of the rest. With
    ``reuse``, a finished run is reused, and evaluated again (not trained) when its AP was
    measured on another set than the task's ``eval_set``. A pending training costs the median
    wall time of the finished runs of its row, else of its proxy, else of all (a paused run
    does not skew it); an evaluation the median of the evaluations'. Returns the records in the
    order of ``tasks``, each with its task's ``row``."""
    records: List[Optional[dict]] = [None] * len(tasks)
    to_train, to_evaluate = [], []
    for i, task in enumerate(tasks):
        key = run_key(task['config'], task['seed'], task['iters'], task['cfg_options'],
                      task.get('train_set'), task.get('teacher'))
        record = finished_run(task['work_dir'], key) if reuse else None
        if record is None:
            to_train.append(i)
        elif record.get('eval_set') != task.get('eval_set'):
            to_evaluate.append(i)
        else:
            records[i] = dict(record, row=task['row'])
    pending = to_evaluate + to_train
    print(f'{len(tasks) - len(pending)} of {len(tasks)} runs reused, {len(to_evaluate)} to '
          f'evaluate again, {len(to_train)} to train ({jobs} at a time)')
    start = time.perf_counter()

    def estimate(i: int) -> float:
        task = tasks[i]
        if i in to_evaluate:
            times = [[r['eval_time'] for r in records if r is not None and 'eval_time' in r]]
        else:
            times = [[r['wall_time'] for r, t in zip(records, tasks)
                      if r is not None and 'wall_time' in r and match(t)]
                     for match in (lambda t: t['row'] == task['row'],
                                   lambda t: t['row'][0] == task['row'][0], lambda t: True)]
        return next((float(np.median(t)) for t in times if t), float('nan'))

    if not pending:
        return records
    with _pool(min(jobs, len(pending)), threads) as pool:
        # train(reuse=True) itself evaluates a finished run again; its log goes beside the
        # training's, not over it.
        futures = {pool.submit(_quiet, train,
                               dict({k: v for k, v in tasks[i].items() if k != 'row'},
                                    reuse=i in to_evaluate),
                               'eval.log' if i in to_evaluate else 'stdout.log'): i
                   for i in pending}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            records[i] = dict(future.result(), row=tasks[i]['row'])
            eta = sum(estimate(j) for j in pending if records[j] is None) / jobs
            took = (f'evaluated again in {records[i]["eval_time"]:.0f} s' if i in to_evaluate
                    else f'{records[i]["wall_time"]:.0f} s')
            print(f'[{done}/{len(pending)}] {tasks[i]["row"][0]} {tasks[i]["name"]} seed '
                  f'{tasks[i]["seed"]}: AP {100 * records[i]["AP"]:.1f}, {took}; elapsed '
                  f'{(time.perf_counter() - start) / 60:.1f} min, ETA {eta / 60:.1f} min',
                  flush=True)
    return records

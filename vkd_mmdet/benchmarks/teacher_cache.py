"""A benchmark teacher, trained once and reused while the settings that made it are unchanged."""
import json
import os.path as osp
from typing import Optional

import torch

from ..utils import safe_load, trusted_checkpoints
from .training_run import evaluate, train, write_record


def teacher_settings(config: str, iters: int, data: dict,
                     cfg_options: Optional[dict] = None) -> dict:
    """What a cached teacher must have been trained with to be reused."""
    return dict(config=osp.relpath(config), iters=iters, data=data,
                cfg_options=cfg_options or {})


def cached_teacher(config: str, work_dir: str, iters: int, data: dict,
                   cfg_options: Optional[dict] = None) -> Optional[dict]:
    """The record of the teacher in ``work_dir`` if it was trained with these settings."""
    record_file = osp.join(work_dir, 'record.json')
    if not (osp.isfile(osp.join(work_dir, 'teacher.pth')) and osp.isfile(record_file)):
        return None
    with open(record_file) as f:
        record = json.load(f)
    return record if record.get('settings') == teacher_settings(
        config, iters, data, cfg_options) else None


def train_teacher(config: str, work_dir: str, iters: int, data: dict,
                  cfg_options: Optional[dict] = None, eval_set: Optional[str] = None) -> dict:
    """Train a teacher once (seed 0) and save it as ``<work_dir>/teacher.pth``; reuse it while
    the settings that made it (config, iterations, ``data``: what identifies its training set,
    options) are unchanged, evaluated again when its AP was measured on another set than
    ``eval_set``."""
    record = cached_teacher(config, work_dir, iters, data, cfg_options)
    if record is not None and record.get('eval_set') != eval_set:
        print(f'teacher: evaluating {record["checkpoint"]} on the current evaluation set')
        return evaluate(config, work_dir, 0, 'teacher', eval_set, cfg_options)
    if record is not None:
        print(f'teacher: reusing {record["checkpoint"]}')
        return record
    ckpt = osp.join(work_dir, 'teacher.pth')
    settings = teacher_settings(config, iters, data, cfg_options)
    record = train(config, work_dir, iters, 0, 'teacher', cfg_options,
                   train_set=data.get('train_set'), eval_set=eval_set)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    # The run just written here: an mmengine training checkpoint (message hub, ...), trusted as
    # Runner.load_checkpoint trusts a local resume file.
    with trusted_checkpoints():
        state = safe_load(last, map_location='cpu')
    # A plain state dict: the distillers load it with torch's safe loader.
    torch.save({'state_dict': state['state_dict'], 'meta': {}}, ckpt)
    record.update(settings=settings, checkpoint=ckpt)
    write_record(work_dir, record)
    return record

"""Hooks that let tests observe runs of the tools in other processes (imported by configs)."""
import json
import os
import os.path as osp
import time

import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from vkd_mmdet.models.projectors import OrthogonalProjector


@HOOKS.register_module()
class TrainProbeHook(Hook):
    """Writes ``<out_dir>/rank<r>.json``: world size, losses per iteration, a checksum of the
    student's weights, and the dtypes seen at the student neck and the distillation losses."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.record = dict(losses=[], neck_dtypes=set(), distill_dtypes=set(), decays={})

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.student.neck.register_forward_hook(self._record_neck)
        orthogonal = {id(p) for m in model.modules() if isinstance(m, OrthogonalProjector)
                      for p in m.parameters()}
        for group in runner.optim_wrapper.optimizer.param_groups:
            for param in group['params']:
                kind = 'orthogonal' if id(param) in orthogonal else 'other'
                self.record['decays'].setdefault(kind, set()).add(group['weight_decay'])
        for modules in model.distill_losses.values():
            for module in modules:
                module.register_forward_hook(
                    lambda _m, _a, out: self.record['distill_dtypes'].add(str(out.dtype)))

    def _record_neck(self, module, _args, out) -> None:
        if module.training:  # not the validation that ends the run
            self.record['neck_dtypes'].add(str(out[0].dtype))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.record['losses'].append({k: float(v) for k, v in outputs.items()})

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        checksum = sum(p.detach().double().abs().sum().item() for p in model.student.parameters())
        rank = dist.get_rank() if dist.is_initialized() else 0
        os.makedirs(self.out_dir, exist_ok=True)
        with open(osp.join(self.out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(rank=rank, world_size=dist.get_world_size() if dist.is_initialized()
                           else 1, iter=runner.iter, checksum=checksum,
                           losses=self.record['losses'],
                           neck_dtypes=sorted(self.record['neck_dtypes']),
                           distill_dtypes=sorted(self.record['distill_dtypes']),
                           decays={k: sorted(v) for k, v in self.record['decays'].items()},
                           backend=dist.get_backend() if dist.is_initialized() else None), f)


@HOOKS.register_module()
class HangAfterIterHook(Hook):
    """After iteration ``at_iter`` (and its checkpoint), touch ``marker`` and hang: a job a test
    can SIGKILL at a known point of training."""

    priority = 'LOWEST'  # after CheckpointHook

    def __init__(self, at_iter: int, marker: str) -> None:
        self.at_iter = at_iter
        self.marker = marker

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            with open(self.marker, 'w') as f:
                f.write(str(self.at_iter))
            time.sleep(600)


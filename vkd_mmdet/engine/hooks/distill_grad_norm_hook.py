"""Measure how hard each loss pulls on the student: gradient norms of the task and distillation
terms with respect to the student's backbone and neck."""
import contextlib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...models.distillers.base_distiller import BaseDistiller
from ...utils.rng_states import get_rng_states, set_rng_states


@HOOKS.register_module()
class DistillGradNormHook(Hook):
    """Before chosen iterations, the L2 norms of ``d(task loss)/d theta`` and of
    ``d(distillation loss)/d theta`` (each distillation loss alone and all of them summed), with
    ``theta`` the student's parameters under ``modules`` (its backbone and neck: what the
    distillation terms train besides their own projectors).

    The training loss is one sum, so its parts cannot be told apart from the optimizer's
    gradients: the hook runs its own forward on the iteration's batch and one backward per part
    (``torch.autograd.grad``, leaving ``.grad`` alone). That forward would move BatchNorm's
    running statistics and consume random numbers; both are restored afterwards (the generators
    by :func:`~vkd_mmdet.utils.rng_states.set_rng_states`), so the training run is the same with
    or without the hook (tested); it costs one forward and a backward per part (and one for their
    sum with several distillation losses) per measured iteration.

    Measured iterations: every ``interval``-th, or with ``ranges`` each iteration in those
    ``[begin, end)`` ranges (a negative bound counts from ``max_iters``: ``[[0, 50], [-50, 0]]``
    is the first and the last 50). Values go to the message hub (``train/grad_norm_task``,
    ``train/grad_norm_<loss>``, ``train/grad_norm_distill``), hence to the logs, and, one entry
    per measured iteration, to ``<log_dir>/grad_norms.json`` at the end of training.

    Args:
        interval (int): measure every ``interval`` iterations when ``ranges`` is None.
            Defaults to 50.
        ranges (list[list[int]], optional): iteration ranges to measure instead.
        modules (list[str]): the student's submodules whose parameters count.
            Defaults to ``('backbone', 'neck')``.

    Config:
        ``custom_hooks = [dict(type='DistillGradNormHook', ranges=[[0, 50], [-50, 0]])]``
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50, ranges: Optional[Sequence[Sequence[int]]] = None,
                 modules: Sequence[str] = ('backbone', 'neck')) -> None:
        if interval < 1:
            raise ValueError(f'DistillGradNormHook: interval must be >= 1, got {interval}')
        if ranges is not None and any(len(r) != 2 for r in ranges):
            raise ValueError('DistillGradNormHook: ranges must be [begin, end) pairs, got '
                             f'{ranges}')
        self.interval = interval
        self.ranges = ranges
        self.modules = tuple(modules)
        self.history: List[Dict[str, float]] = []

    def _measured(self, iteration: int, max_iters: int) -> bool:
        if self.ranges is None:
            return iteration % self.interval == 0
        for begin, end in self.ranges:
            # [-50, 0] is the last 50: an end of 0 after a negative begin means max_iters.
            end = end + max_iters if end < 0 or (end == 0 and begin < 0) else end
            begin = begin + max_iters if begin < 0 else begin
            if begin <= iteration < end:
                return True
        return False

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, BaseDistiller) or \
                not self._measured(runner.iter, runner.max_iters):
            return
        norms = self.grad_norms(model, data_batch, runner.optim_wrapper)
        for key, value in norms.items():
            runner.message_hub.update_scalar(f'train/grad_norm_{key}', value)
        self.history.append(dict(iter=runner.iter, **norms))

    def grad_norms(self, model: BaseDistiller, data_batch, optim_wrapper) -> Dict[str, float]:
        """``{'task': ..., '<loss name>': ..., 'distill': ...}`` on ``data_batch``."""
        return measure_loss_parts(model, data_batch, optim_wrapper, self.modules)['grad_norms']

    def after_train(self, runner) -> None:
        if self.history:
            with open(osp.join(runner.log_dir, 'grad_norms.json'), 'w') as f:
                json.dump(self.history, f)


def _norm(grads: Sequence[Optional[torch.Tensor]]) -> float:
    """L2 norm of a list of gradients (``None``: the loss does not reach that parameter)."""
    squares = [g.float().pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


def measure_loss_parts(model: BaseDistiller, data_batch, optim_wrapper,
                       modules: Sequence[str] = ('backbone', 'neck'),
                       scheduled: bool = True) -> Dict[str, dict]:
    """One forward of ``model`` on ``data_batch`` and one backward per loss part, training left
    as it was (buffers, modules' extra states such as a loss's own generator, and the global
    random generators restored; ``.grad`` untouched).

    The parts: ``'task'`` (the student's own losses summed) and each distillation term (its
    levels summed), told apart by :meth:`BaseDistiller.distill_loss_name`.

    Args:
        model (BaseDistiller): the distiller (unwrapped).
        data_batch: a batch as the data loader gives it.
        optim_wrapper: the run's optim wrapper (its ``optim_context``: autocast under --amp), or
            None.
        modules (Sequence[str]): the student's submodules whose parameters the gradient norms
            are taken over.
        scheduled (bool): apply the distillation terms' schedule factors (what the optimizer
            sees), else measure them at their configured ``loss_weight``. Defaults to True.

    Returns:
        dict: ``values`` (every ``loss`` key -> its value), ``parts`` (part -> summed value) and
        ``grad_norms`` (part -> L2 norm of its gradient, and ``'distill'``: of all distillation
        terms summed).
    """
    missing = [name for name in modules if getattr(model.student, name, None) is None]
    if missing:
        raise ValueError(f'DistillGradNormHook: the student has no {missing}; set `modules` '
                         f'to some of its submodules')
    params = [p for name in modules
              for p in getattr(model.student, name).parameters() if p.requires_grad]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    # Modules' own state beyond buffers, e.g. a loss's checkpointed generator (MGD's masks).
    extra_states = {name: module.get_extra_state() for name, module in model.named_modules()
                    if type(module).get_extra_state is not torch.nn.Module.get_extra_state}
    rng_states = get_rng_states()
    context = optim_wrapper.optim_context(model) if optim_wrapper is not None \
        else contextlib.nullcontext()
    try:
        with context:
            data = model.data_preprocessor(data_batch, True)
            losses = model(**data, mode='loss') if isinstance(data, dict) \
                else model(*data, mode='loss')
        values: Dict[str, torch.Tensor] = {}
        parts: Dict[str, torch.Tensor] = {}
        for key, value in losses.items():
            if 'loss' not in key:
                continue
            value = sum(value) if isinstance(value, (list, tuple)) else value
            if scheduled:
                value = value * model.distill_loss_scales.get(model.distill_loss_name(key), 1.0)
            values[key] = value
            owner = model.distill_loss_name(key) or 'task'
            parts[owner] = parts.get(owner, 0) + value
        norms = {key: _norm(torch.autograd.grad(value, params, retain_graph=True,
                                                allow_unused=True))
                 for key, value in parts.items()}
        distill = [key for key in parts if key != 'task']
        if len(distill) == 1:
            norms['distill'] = norms[distill[0]]
        elif distill:
            norms['distill'] = _norm(torch.autograd.grad(
                sum(parts[key] for key in distill), params, allow_unused=True))
        return dict(values={key: float(v.detach()) for key, v in values.items()},
                    parts={key: float(v.detach()) for key, v in parts.items()}, grad_norms=norms)
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])
        for name, module in model.named_modules():
            if name in extra_states:
                module.set_extra_state(extra_states[name])
        set_rng_states(rng_states)

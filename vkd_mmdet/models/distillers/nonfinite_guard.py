"""Skip the optimizer step of an iteration whose loss or gradient is NaN / Inf, so that one bad
batch never poisons the student."""
import copy
import logging
import weakref
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine.dist import all_gather_object, all_reduce, get_dist_info
from mmengine.logging import MessageHub, print_log
from torch import Tensor
from torch.optim.optimizer import register_optimizer_step_pre_hook

#: The advice of the error that stops the run, per kind of failure.
_WHAT_TO_CHECK = (
    'check the learning rate and warm-up (optim_wrapper, param_scheduler), the weight of the '
    'named term ({weight_key}), and the teacher checkpoint; under --amp, a float16 overflow in '
    "the teacher: set the distiller's teacher_precision='fp32' or 'bf16'")


class NonFiniteGuard:
    """A non-finite loss or gradient skips the optimizer step of its iteration: no parameter,
    no optimizer state (momentum, Adam moments and step) and no BatchNorm running statistic
    changes, as if the batch had never been drawn (the schedulers and the data still move on).

    How it runs, on by default for every distiller and the same under both launchers:

    - the distiller's forward pre-hook keeps a copy of its buffers (BatchNorm running
      statistics) at the start of each training forward (``mode='loss'``);
    - the distiller's ``parse_losses`` (called by ``BaseModel.train_step`` and by
      ``MMDistributedDataParallel.train_step`` alike) calls :meth:`check_losses`: a non-finite
      loss value on any rank (the flag is all-reduced, so every rank decides alike) is counted
      and logged with its key (``loss_vkd_p4``: term ``vkd``, level ``p4``) and marks the step
      to skip;
    - a step pre-hook of the optimizer (``torch.optim``'s global
      ``register_optimizer_step_pre_hook``, which fires whatever the optim wrapper: plain,
      ``AmpOptimWrapper`` after its unscale, gradient clipping) checks the gradients (after DDP's
      all-reduce, so all ranks agree) and, for a marked step or a non-finite gradient, sets every
      gradient of the optimizer to ``None`` (``torch.optim``'s optimizers then leave those
      parameters and their state untouched) and restores the buffers (after the backward, which
      may read some of them).

    Why not an optim wrapper or ``train_step``: ``MMDistributedDataParallel`` bypasses the
    model's ``train_step``, and a wrapper type is a per-config key that ``--amp`` replaces; the
    model's ``parse_losses``, its forward and the optimizer's step run in every set-up.

    After ``max_consecutive_skips`` skipped steps in a row the run stops with an error naming the
    terms and what to check (a NaN every step is a broken set-up, not a bad batch). Under
    ``AmpOptimWrapper`` an overflowing float16 gradient is the loss scaler's to handle (it skips
    the step and lowers the scale, never reaching this guard), not counted here.

    Args:
        model (nn.Module): the distiller (its buffers are restored on a skip).
        max_consecutive_skips (int): stop after this many skipped steps in a row. Defaults to 5.
        enabled (bool): False turns the guard off. Defaults to True.

    Config:
        .. code-block:: python

            model = dict(type='DetectionDistiller', ...,
                         nonfinite_guard=dict(max_consecutive_skips=10))
    """

    def __init__(self, model: nn.Module, max_consecutive_skips: int = 5,
                 enabled: bool = True) -> None:
        if max_consecutive_skips < 1:
            raise ValueError('model.nonfinite_guard.max_consecutive_skips must be >= 1, got '
                             f'{max_consecutive_skips}')
        # A weak reference: the model holds the guard (and its forward pre-hook), and a cycle
        # would leave a dropped model to the cyclic garbage collector, whose finalizers (the
        # projector decay guard's hook removal) may then run while torch iterates the hooks.
        self._model = weakref.ref(model)
        self.max_consecutive_skips = max_consecutive_skips
        self.enabled = enabled
        self.skipped = 0  # steps skipped in this run
        self.consecutive = 0  # steps skipped in a row
        self._buffers: Optional[Dict[str, Tensor]] = None  # at the start of this forward
        self._skip_reason: Optional[str] = None  # set: this iteration's step is skipped
        if enabled:
            model.register_forward_pre_hook(self._before_forward, with_kwargs=True)
            _GUARDS.add(self)
            _install_step_pre_hook()

    @property
    def model(self) -> nn.Module:
        return self._model()

    def __deepcopy__(self, memo: dict) -> 'NonFiniteGuard':
        """A copy for the model's deep copy (``memo`` maps the model to its copy): it refers to
        that copy, holds no buffers of the original and counts afresh."""
        copied = copy.copy(self)
        copied._model = weakref.ref(memo.get(id(self.model), self.model))
        copied._buffers, copied._skip_reason = None, None
        copied.skipped = copied.consecutive = 0
        return copied

    def _before_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if module.training and kwargs.get('mode', args[2] if len(args) > 2 else None) == 'loss':
            if self._skip_reason is not None:  # skipped without a step (AMP's scaler skipped it)
                self._restore_buffers()
            self._buffers = {name: buffer.detach().clone()
                             for name, buffer in module.named_buffers()}
            self._skip_reason = None

    def check_losses(self, losses: Dict[str, Union[Tensor, List[Tensor]]]) -> None:
        """Mark this iteration's step to skip if a ``loss`` value is non-finite on any rank.

        Raises:
            RuntimeError: the ``max_consecutive_skips``-th skipped step in a row.
        """
        if not self.enabled or not torch.is_grad_enabled():
            return
        values = {key: torch.stack([v.detach().float().sum() for v in value])
                  if isinstance(value, (list, tuple)) else value.detach().float()
                  for key, value in losses.items() if 'loss' in key}
        if not values:
            return
        finite = torch.stack([torch.isfinite(v).all() for v in values.values()])
        bad = torch.logical_not(finite).sum().reshape(1).float()
        _, world_size = get_dist_info()
        if world_size > 1:
            all_reduce(bad, op='sum')
        if bad.item() == 0:
            return
        keys = [key for key, ok in zip(values, finite.tolist()) if not ok]
        if world_size > 1:  # each rank names its own; every rank gets here (the flag is shared)
            keys = sorted({key for rank_keys in all_gather_object(keys) for key in rank_keys})
        self._skip(f'non-finite loss: {self._describe(keys)}', keys)

    def before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Skip ``optimizer``'s step (all its gradients to ``None``) for a marked iteration or a
        non-finite gradient."""
        params = [p for group in optimizer.param_groups for p in group['params']]
        if self._skip_reason is None:
            grads = [(p, p.grad) for p in params if p.grad is not None]
            finite = torch.stack([g.isfinite().all() for _, g in grads]) if grads else None
            if finite is not None and not bool(finite.all()):
                names = {id(p): name for name, p in self.model.named_parameters()}
                bad = [names.get(id(p), '?') for (p, _), ok in zip(grads, finite.tolist())
                       if not ok]
                terms = sorted({self._term_of_parameter(name) for name in bad} - {None})
                self._skip(f'non-finite gradient in {len(bad)} parameters (first: '
                           f'{", ".join(bad[:3])})', [f'loss_{term}' for term in terms])
        if self._skip_reason is None:
            self.consecutive = 0
            return
        for p in params:
            p.grad = None
        self._restore_buffers()
        self._skip_reason = None

    def _restore_buffers(self) -> None:
        """Put back the buffers of the skipped iteration's start (after its backward: some
        buffers, e.g. a projector's, are inputs of the graph and must not change before)."""
        if self._buffers is not None:
            with torch.no_grad():
                for name, buffer in self.model.named_buffers():
                    if name in self._buffers:
                        buffer.copy_(self._buffers[name])

    def _term_of_parameter(self, name: str) -> Optional[str]:
        """``distill_losses.vkd.1.projector.raw_weight`` -> ``vkd``; None for the student's."""
        for attr in getattr(self.model, 'distill_loss_attrs', ()):
            if name.startswith(f'{attr}.'):
                return name.split('.')[1]
        return None

    def _describe(self, keys: List[str]) -> str:
        """``loss_vkd_p4 (distillation term vkd, level p4)``, ``loss_cls (student task loss)``."""
        owner = getattr(self.model, 'distill_loss_name', lambda key: None)
        parts = []
        for key in keys:
            name = owner(key)
            if name is None:
                parts.append(f'{key} (student task loss)')
            else:
                level = key[len(f'loss_{name}_'):] if key != f'loss_{name}' else ''
                parts.append(f'{key} (distillation term {name}'
                             f'{", level " + level if level else ""})')
        return ', '.join(parts)

    def _skip(self, reason: str, keys: List[str]) -> None:
        """Mark the step to skip (the buffers are restored after the backward), count, log;
        stop after too many in a row."""
        self._skip_reason = reason
        self.skipped += 1
        self.consecutive += 1
        message_hub = MessageHub.get_current_instance()
        message_hub.update_scalar('train/nonfinite_skips', self.skipped)
        iteration = message_hub.get_info('iter')  # 0-based; the logs count from 1
        iteration = '?' if iteration is None else iteration + 1
        print_log(f'NonFiniteGuard: optimizer step skipped at iteration {iteration} '
                  f'({self.consecutive} in a row, {self.skipped} in all): {reason}',
                  logger='current', level=logging.WARNING)
        if self.consecutive >= self.max_consecutive_skips:
            owner = getattr(self.model, 'distill_loss_name', lambda key: None)
            terms = [name for name in map(owner, keys) if name is not None]
            weight_key = (self.model.distill_loss_weight_key(terms[0]) if terms
                          else 'model.distill_losses.<name>.loss_weight')
            raise RuntimeError(
                f'NonFiniteGuard: {self.consecutive} optimizer steps in a row skipped (limit '
                f'model.nonfinite_guard.max_consecutive_skips={self.max_consecutive_skips}); '
                f'last: {reason}. ' + _WHAT_TO_CHECK.format(weight_key=weight_key))


#: The live guards; the step pre-hook finds the one whose model an optimizer trains.
_GUARDS: 'weakref.WeakSet[NonFiniteGuard]' = weakref.WeakSet()
#: optimizer -> a weak reference to its guard, or None for an optimizer of another model.
_OWNERS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()
_HOOK_HANDLE = None


def _owner(optimizer: torch.optim.Optimizer) -> Optional[NonFiniteGuard]:
    """The guard whose model holds ``optimizer``'s first parameter (found once per optimizer)."""
    if optimizer in _OWNERS:
        ref = _OWNERS[optimizer]
        return ref() if ref is not None else None
    first = next((p for group in optimizer.param_groups for p in group['params']), None)
    guard = next((g for g in list(_GUARDS) if first is not None and g.model is not None and any(
        p is first for p in g.model.parameters())), None)
    _OWNERS[optimizer] = weakref.ref(guard) if guard is not None else None
    return guard


def _step_pre_hook(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
    guard = _owner(optimizer)
    if guard is not None and guard.enabled and guard.model is not None:
        guard.before_step(optimizer)


def _install_step_pre_hook() -> None:
    """Register :func:`_step_pre_hook` with torch once per process."""
    global _HOOK_HANDLE
    if _HOOK_HANDLE is None:
        _HOOK_HANDLE = register_optimizer_step_pre_hook(_step_pre_hook)


# At import, before any distiller is built: torch runs the global step pre-hooks in registration
# order, and a hook that removes itself while they run (the projector decay guard's does) breaks
# the iteration for every hook registered after it.
_install_step_pre_hook()

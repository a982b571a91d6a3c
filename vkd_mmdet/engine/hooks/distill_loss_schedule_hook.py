"""Ramp distillation terms up, or stop them, by epoch or iteration."""
from typing import Dict

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...models.distillers.base_distiller import BaseDistiller

#: The schedule policies and the keys each takes besides ``policy`` and ``by_epoch``.
POLICIES = {'constant': {'factor'}, 'linear': {'begin', 'end'}, 'step': {'end'}}


@HOOKS.register_module()
class DistillLossScheduleHook(Hook):
    """Before every training iteration, set each distillation term's weight multiplier from a
    schedule of the epoch or the iteration: the term's loss is ``factor(t) * loss_weight *
    loss`` (the distiller's :attr:`~BaseDistiller.distill_loss_scales`, applied in its
    ``parse_losses``, so the logged values are the weighted ones).

    Policies (``t``: the epoch counted from 0 with ``by_epoch=True``, else the iteration):

    - ``dict(policy='constant', factor=f)``: ``f`` throughout;
    - ``dict(policy='linear', begin=b, end=e)``: linear warm-up, 0 before ``b``, rising to 1 at
      ``e``, 1 after (by epoch, the factor changes at each epoch's start);
    - ``dict(policy='step', end=e)``: 1 before ``e``, 0 from ``e`` on (distillation stops; the
      teacher still runs, at no effect on the student).

    The factor is a function of ``t`` alone, recomputed before every iteration: a resumed run
    sets the factors of the uninterrupted one (nothing is stored; tested across a ramp). Each
    factor goes to the message hub (``train/distill_factor_<name>``, hence to the logs), and a
    change is logged.

    Args:
        schedules (dict[str, dict]): term name (a key of the distiller's ``distill_losses``, or
            ``'*'`` for every term without its own entry) -> schedule.

    Config:
        The RTMDet recipe: distillation during the 280 mosaic epochs of 300, then off.

        .. code-block:: python

            custom_hooks = [dict(type='DistillLossScheduleHook',
                                 schedules={'*': dict(policy='step', end=280, by_epoch=True)})]
    """

    priority = 'NORMAL'

    def __init__(self, schedules: Dict[str, dict]) -> None:
        if not schedules:
            raise ValueError("DistillLossScheduleHook: `schedules` is empty; e.g. schedules={'*': "
                             "dict(policy='step', end=280, by_epoch=True)}")
        for name, schedule in schedules.items():
            policy = schedule.get('policy')
            if policy not in POLICIES:
                raise ValueError(f'DistillLossScheduleHook: schedules.{name}.policy={policy!r}: '
                                 f'expected one of {sorted(POLICIES)}')
            keys = set(schedule) - {'policy', 'by_epoch'}
            if keys != POLICIES[policy]:
                raise ValueError(f'DistillLossScheduleHook: schedules.{name} ({policy}) takes '
                                 f'{sorted(POLICIES[policy])} (and by_epoch), got {sorted(keys)}')
            if policy == 'linear' and not schedule['end'] > schedule['begin'] >= 0:
                raise ValueError(f'DistillLossScheduleHook: schedules.{name}: expected 0 <= '
                                 f'begin < end, got begin={schedule["begin"]}, '
                                 f'end={schedule["end"]}')
        self.schedules = schedules
        self._factors: Dict[str, float] = {}

    @staticmethod
    def factor(schedule: dict, epoch: int, iteration: int) -> float:
        """The multiplier of ``schedule`` at ``epoch`` / ``iteration`` (both counted from 0)."""
        t = epoch if schedule.get('by_epoch', False) else iteration
        policy = schedule['policy']
        if policy == 'constant':
            return float(schedule['factor'])
        if policy == 'step':
            return 1.0 if t < schedule['end'] else 0.0
        begin, end = schedule['begin'], schedule['end']
        return min(max((t - begin) / (end - begin), 0.0), 1.0)

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        names = model.distill_loss_names()
        unknown = sorted(set(self.schedules) - set(names) - {'*'})
        if unknown:
            raise ValueError(f'DistillLossScheduleHook: schedules names {unknown}, the '
                             f'distiller\'s terms are {names}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = self._distiller(runner)
        for name in model.distill_loss_names():
            schedule = self.schedules.get(name, self.schedules.get('*'))
            if schedule is None:
                continue
            value = self.factor(schedule, runner.epoch, runner.iter)
            previous = self._factors.get(name)
            # The start, and where a ramp ends or a step falls (not every step of a ramp).
            if previous is None or (value != previous and value in (0.0, 1.0)):
                runner.logger.info(f'DistillLossScheduleHook: {name} factor {value:g} from '
                                   f'{"epoch" if schedule.get("by_epoch") else "iteration"} '
                                   f'{runner.epoch if schedule.get("by_epoch") else runner.iter}')
            self._factors[name] = value
            model.distill_loss_scales[name] = value
            runner.message_hub.update_scalar(f'train/distill_factor_{name}', value)

    @staticmethod
    def _distiller(runner) -> BaseDistiller:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, BaseDistiller):
            raise TypeError(f'DistillLossScheduleHook: the model is a {type(model).__name__}, '
                            'not a distiller')
        return model


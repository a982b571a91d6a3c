"""Refuse, before the first iteration, an optimizer that decays an orthogonal projector."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...models.distillers.base_distiller import BaseDistiller


@HOOKS.register_module()
class ProjectorDecayCheckHook(Hook):
    """Check the runner's optimizer once, before training, in every launcher mode.

    Weight decay drags an orthogonal projector back to its initialisation (see
    :class:`~vkd_mmdet.models.projectors.OrthogonalProjector`); a config that decays one is
    refused with the ``custom_keys`` rule to add. The distiller's own ``train_step`` check does
    not run under ``MMDistributedDataParallel``, which has its own ``train_step``: this hook reads
    ``runner.optim_wrapper`` and the unwrapped model before the first iteration instead, on every
    rank (single process, ``pytorch`` / ``slurm`` / ``mpi`` launchers alike). Models other than
    distillers pass unchecked.

    Config:
        ``custom_hooks = [dict(type='ProjectorDecayCheckHook')]``
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseDistiller):
            model.check_optimizer(runner.optim_wrapper)

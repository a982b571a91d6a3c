"""Build a distillation loss from its config after checking its declaration (the contract)."""
from typing import Collection, Mapping, Optional

from mmengine.registry import Registry

from ..losses.distill_loss import DistillLoss

# Config keys the distillers read in an earlier release; the loss class now declares them.
REMOVED_KEYS = {
    'inputs': 'remove it: the loss class declares what it consumes (`consumes`, e.g. '
              "LogitKDLoss.consumes == 'logits': RoI logits in DetectionDistiller)",
    'as_map': "remove it: a loss that consumes 'fpn' maps receives (N, C, 1, 1) maps",
}


def distill_loss_class(registry: Registry, cfg: dict, key: str,
                       extras: Mapping[str, Collection[str]]) -> type:
    """The :class:`DistillLoss` subclass ``cfg`` builds, its declaration checked against what
    the distiller gives.

    Args:
        registry (Registry): the registry the distiller builds losses from.
        cfg (dict): the loss config.
        key (str): its config key (``'distill_losses.vkd'``), for error messages.
        extras (Mapping[str, Collection[str]]): each input kind the distiller gives -> the
            per-step extras it gives with it.

    Raises:
        TypeError / ValueError: naming ``key``: not a config dict, not a DistillLoss, a kind or
            extra this distiller does not give, a removed key or a moved argument.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'{key} must be a loss config dict with a `type`, got {cfg!r}')
    loss_type = cfg['type']
    loss_cls: Optional[type] = loss_type if isinstance(loss_type, type) \
        else registry.get(loss_type)
    if loss_cls is None:
        raise KeyError(f'{key}.type={loss_type!r} is not a registered loss')
    if not (isinstance(loss_cls, type) and issubclass(loss_cls, DistillLoss)):
        raise TypeError(f'{key}.type={loss_type!r}: {getattr(loss_cls, "__name__", loss_cls)} '
                        'is not a distillation loss: subclass vkd_mmdet.models.losses.DistillLoss '
                        'and declare what it consumes (see docs/write_a_loss.md)')
    if loss_cls.consumes not in extras:
        raise ValueError(f'{key}: {loss_cls.__name__} consumes {loss_cls.consumes!r}; this '
                         f'distiller gives {sorted(extras)}')
    given = extras[loss_cls.consumes]
    missing = [extra for extra in loss_cls.extras if extra not in given]
    if missing:
        raise ValueError(f'{key}: {loss_cls.__name__} needs the extras {missing}; with '
                         f'{loss_cls.consumes!r} inputs this distiller gives {sorted(given)}')
    for old, hint in {**REMOVED_KEYS, **loss_cls.moved_args}.items():
        if old in cfg:
            raise ValueError(f'{key}.{old} is no longer read: {hint}')
    return loss_cls

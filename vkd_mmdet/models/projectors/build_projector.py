"""Build the channel map of a distillation loss from its ``projector`` config."""
from types import MappingProxyType
from typing import Mapping, Optional

import torch.nn as nn
from mmdet.registry import MODELS

#: Default ``projector`` configs of the losses (read-only: safe as argument defaults).
ORTHOGONAL = MappingProxyType({'type': 'OrthogonalProjector'})
LINEAR = MappingProxyType({'type': 'LinearAdapter'})


def build_projector(cfg: Optional[Mapping], in_channels: int, out_channels: int,
                    owner: str) -> nn.Module:
    """The student-side map ``C_s -> C_t`` a loss's ``projector`` config asks for.

    Args:
        cfg (Mapping, optional): a registered map (``dict(type='OrthogonalProjector')``,
            ``dict(type='LinearAdapter', bias=False)``, ...) built with the loss's widths; None
            for no map (``nn.Identity``), which needs ``C_s == C_t``.
        in_channels (int): ``C_s``.
        out_channels (int): ``C_t``.
        owner (str): the loss, for error messages.

    Raises:
        ValueError: ``projector=None`` with ``C_s != C_t``, or a config that sets the widths.
    """
    if cfg is None:
        if in_channels != out_channels:
            raise ValueError(f'{owner}: projector=None maps nothing, but in_channels='
                             f'{in_channels} != out_channels={out_channels}; give a map, e.g. '
                             "projector=dict(type='LinearAdapter')")
        return nn.Identity()
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise TypeError(f'{owner}: projector must be None or a config dict with a `type` '
                        f"(e.g. dict(type='OrthogonalProjector')), got {cfg!r}")
    widths = {key: cfg[key] for key in ('in_channels', 'out_channels') if key in cfg}
    if widths:
        raise ValueError(f'{owner}: projector={cfg!r} sets {sorted(widths)}; the widths are the '
                         "loss's in_channels / out_channels, leave them out")
    # Looked up in mmdet's registry whatever the default scope (mmpretrain configs use it too).
    projector_type = cfg['type']
    projector_cls = MODELS.get(projector_type) if isinstance(projector_type, str) \
        else projector_type
    if projector_cls is None:
        raise KeyError(f'{owner}: projector type {projector_type!r} is not registered in '
                       "mmdet's MODELS (e.g. 'OrthogonalProjector', 'LinearAdapter')")
    args = {key: value for key, value in cfg.items() if key != 'type'}
    return projector_cls(in_channels=in_channels, out_channels=out_channels, **args)

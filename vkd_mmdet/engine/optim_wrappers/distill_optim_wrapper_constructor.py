"""Build a distiller's optimizer with its orthogonal projectors out of weight decay."""
import copy

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ...models.projectors import OrthogonalProjector


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DistillOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, plus one rule: orthogonal projectors take no weight decay.

    Decay pulls a projector's free parameters towards zero, i.e. its weight back to its
    initialisation: a silent loss of the distillation. Every parameter of every
    :class:`OrthogonalProjector` in the model (found by type, not by name) gets ``decay_mult=0``
    on top of whatever ``paramwise_cfg.custom_keys`` entry already matches it (its ``lr_mult``
    stays); every other parameter keeps the optimizer's decay and the config's rules. Configs
    inheriting ``configs/_base_/distill_runtime.py`` use it, in every launcher mode (it runs where
    mmengine builds the optimizer, before DDP wraps anything).

    Config:
        ``optim_wrapper = dict(constructor='DistillOptimWrapperConstructor', ...)``
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        module = getattr(model, 'module', model)
        names = [f'{name}.{param_name}' if name else param_name
                 for name, sub in module.named_modules() if isinstance(sub, OrthogonalProjector)
                 for param_name, _ in sub.named_parameters(recurse=False)]
        original = self.paramwise_cfg
        custom_keys = dict(original.get('custom_keys', {}))
        # Always mmengine's parameter-wise path (a non-empty paramwise_cfg): it leaves frozen
        # parameters out of the optimizer, whether or not the model has projectors.
        self.paramwise_cfg = dict(copy.deepcopy(original), custom_keys=custom_keys)
        if names and self.base_wd:
            # mmengine applies the longest matching key; a parameter's full name is longer than
            # any key that matches it, so the rule below wins, keeping the user's other settings.
            user_keys = sorted(custom_keys, key=len, reverse=True)
            for name in names:
                matched = next((key for key in user_keys if key in name), None)
                custom_keys[name] = dict(custom_keys.get(matched, {}), decay_mult=0.0)
            print_log(f'DistillOptimWrapperConstructor: {len(names)} orthogonal projector '
                      'parameter(s) without weight decay', logger='current')
        try:
            return super().__call__(model)
        finally:
            self.paramwise_cfg = original

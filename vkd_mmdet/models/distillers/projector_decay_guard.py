"""Refuse, at its first step, an optimizer that applies weight decay to an orthogonal projector."""
import weakref

import torch.nn as nn
from torch.optim import Optimizer
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ..projectors import OrthogonalProjector

NO_DECAY_HINT = ("optim_wrapper=dict(constructor='DistillOptimWrapperConstructor') (the shipped "
                 'configs set it)')


def guard_projector_decay(model: nn.Module) -> None:
    """Check, in every launcher mode, that no optimizer decays one of ``model``'s projectors.

    Decay pulls an orthogonal projector's free parameters to zero, i.e. its weight back to its
    initialisation: a silent loss of the distillation. ``DistillOptimWrapperConstructor`` builds
    optimizers without it; this guard catches a config that does not use it. It is a torch
    optimizer step pre-hook (``register_optimizer_step_pre_hook``): it runs before the first step
    of whichever optimizer trains the model, however the runner wraps the model (a
    ``train_step`` check would miss ``MMDistributedDataParallel``, which runs its own), and no
    config has to list it. It checks until an optimizer holding the model's projector parameters
    has passed (a no-op afterwards) and is removed when the model is garbage collected.

    Raises:
        ValueError (at that optimizer's first ``step``): naming the decayed parameters, the
            decay and the config key to set.
    """
    model_ref = weakref.ref(model)
    checked = []  # set once an optimizer holding the projectors passed (or there are none)

    def check(optimizer: Optimizer, args, kwargs) -> None:
        owner = model_ref()
        if owner is None or checked:
            return
        names = {id(param): name for name, param in owner.named_parameters()
                 if _in_projector(owner, name)}
        if not names:
            checked.append(True)
            return
        found = False
        for group in optimizer.param_groups:
            decayed = [names[id(p)] for p in group['params'] if id(p) in names]
            found = found or bool(decayed)
            if decayed and group.get('weight_decay', 0):
                raise ValueError(
                    f'optim_wrapper: orthogonal projector parameters ({", ".join(decayed[:3])}'
                    f'{", ..." if len(decayed) > 3 else ""}) are in a param group with '
                    f'weight_decay={group["weight_decay"]}; decay drags them back to their '
                    f'initialisation. Set {NO_DECAY_HINT}.')
        if found:
            checked.append(True)

    # Removed with the model, never from inside the hook: torch iterates over its hooks then.
    handle = register_optimizer_step_pre_hook(check)
    weakref.finalize(model, handle.remove)


def _in_projector(model: nn.Module, param_name: str) -> bool:
    module_name = param_name.rsplit('.', 1)[0] if '.' in param_name else ''
    return isinstance(model.get_submodule(module_name), OrthogonalProjector)

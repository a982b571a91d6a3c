"""A distiller refuses the checkpoint of another model.

mmengine's ``resume`` and ``load_from`` load non-strictly: a checkpoint of another method (two
configs trained into one work dir) loads the shared student weights, logs the rest as missing /
unexpected and fails later, if at all, with an unrelated error (the optimizer's parameter
groups). A distiller registers :func:`refuse_mismatched_state_dict` as its load post-hook instead;
``Runner.load_checkpoint``, once :mod:`.safe_loading` is installed, adds the file's name.
"""
from typing import Any, Sequence

import torch.nn as nn

#: How a user loads such a checkpoint anyway (the distillers' ``load_strict`` argument).
OVERRIDE_HINT = '--cfg-options model.load_strict=False'


class CheckpointMismatchError(RuntimeError):
    """The state dict loaded into a distiller lacks some of its keys or has keys it lacks."""


def _first(keys: Sequence[str]) -> str:
    return f'{len(keys)} (first: {keys[0]})' if keys else '0'


def refuse_mismatched_state_dict(module: nn.Module, incompatible_keys: Any) -> None:
    """``register_load_state_dict_post_hook`` hook: raise on any missing or unexpected key.

    Runs in torch's ``load_state_dict`` and in mmengine's (which calls the same hooks with the
    keys of the whole model when registered on the root module).
    """
    missing, unexpected = incompatible_keys.missing_keys, incompatible_keys.unexpected_keys
    if missing or unexpected:
        raise CheckpointMismatchError(
            f'the checkpoint does not match this {type(module).__name__}: missing keys '
            f'{_first(missing)}, unexpected keys {_first(unexpected)}. It is most likely the '
            'checkpoint of another config (e.g. another method trained into the same work dir): '
            'resume from the right one or train into another --work-dir. To load it '
            f'non-strictly anyway (mmengine\'s default), add {OVERRIDE_HINT}.')

"""The undocumented mmengine runner and loop state vkd_mmdet relies on, each read or replaced in
one function here: should mmengine drop or rename it, that function fails with the attribute's
name instead of the hooks silently misbehaving.

Checked against mmengine 0.10.7 (what both pinned stacks install, ``requirements/pinned*.txt``);
``tests/test_engine/test_runner_internals.py`` checks each against the installed mmengine.
"""
from typing import Callable, Iterator

import mmengine
from mmengine.runner import IterBasedTrainLoop

#: The mmengine version the attributes below were checked against.
CHECKED_VERSION = '0.10.7'


def _missing(attribute: str, needed_for: str) -> RuntimeError:
    return RuntimeError(
        f'{attribute} is missing in mmengine {mmengine.__version__} (vkd_mmdet relies on it '
        f'for {needed_for}; checked against mmengine {CHECKED_VERSION})')


def is_resuming(runner) -> bool:
    """Whether ``runner`` resumes a training (``resume=True``, ``--resume``) rather than only
    loading weights into a new one (``load_from``).

    mmengine calls ``after_load_checkpoint`` for both and gives hooks no public way to tell them
    apart; the runner keeps its ``resume`` argument in the private ``Runner._resume``
    (``FlexibleRunner._resume`` may hold the checkpoint path instead of True).

    Raises:
        RuntimeError: ``runner`` has no ``_resume``.
    """
    try:
        return bool(runner._resume)
    except AttributeError:
        raise _missing('Runner._resume', 'telling --resume from load_from') from None


def after_replayed_batches(loop, callback: Callable[[], None]) -> bool:
    """Call ``callback`` once ``loop`` has replayed the batches a resumed run skips, just before
    it fetches the first batch it trains on.

    ``IterBasedTrainLoop.run``, resumed at iteration ``n > 0``, calls ``before_train_epoch`` and
    then draws ``n`` batches from its ``dataloader_iterator`` to move the data past those already
    trained on. Called from ``before_train_epoch``, this function wraps that attribute for those
    ``n`` draws; after the last one it runs ``callback`` and puts the iterator back.

    Args:
        loop: the runner's ``train_loop``.
        callback (Callable[[], None]): what to run after the replayed batches.

    Returns:
        bool: False, with nothing done, where the loop replays nothing: not an
        ``IterBasedTrainLoop`` (``EpochBasedTrainLoop`` resumes at the start of an epoch), or at
        iteration 0.

    Raises:
        RuntimeError: an ``IterBasedTrainLoop`` without ``dataloader_iterator``.
    """
    if not isinstance(loop, IterBasedTrainLoop):
        return False
    if not hasattr(loop, 'dataloader_iterator'):
        raise _missing('IterBasedTrainLoop.dataloader_iterator',
                       'acting after the batches a resumed run replays')
    if loop.iter == 0:
        return False
    loop.dataloader_iterator = _CallAfterReplay(loop, loop.iter, callback)
    return True


class _CallAfterReplay:
    """Stands in for ``loop.dataloader_iterator`` for ``replayed`` batches, then calls
    ``callback`` and steps aside."""

    def __init__(self, loop: IterBasedTrainLoop, replayed: int,
                 callback: Callable[[], None]) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._left = replayed
        self._callback = callback

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        batch = next(self._iterator)
        self._left -= 1
        if self._left == 0:
            self._loop.dataloader_iterator = self._iterator
            self._callback()
        return batch

"""The undocumented mmengine runner and loop state vkd_mmdet relies on, each read or replaced in
one function here: should mmengine drop or rename it, that function fails with the attribute's
name instead of the hooks silently misbehaving.

Checked against mmengine 0.10.7 (what both pinned stacks install, ``requirements/pinned*.txt``);
``tests/test_engine/test_runner_internals.py`` checks each against the installed mmengine.
"""
from typing import Callable, Iterator, List

import mmengine
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

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

    An ``EpochBasedTrainLoop`` whose resumed epoch :func:`resume_mid_epoch` set to skip its
    trained batches calls ``callback`` after those.

    Returns:
        bool: False, with nothing done, where the loop replays nothing: an
        ``EpochBasedTrainLoop`` resumed at the start of an epoch, or iteration 0.

    Raises:
        RuntimeError: an ``IterBasedTrainLoop`` without ``dataloader_iterator``.
    """
    if isinstance(getattr(loop, 'dataloader', None), _SkipFirstBatches):
        loop.dataloader.callbacks.append(callback)
        return True
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


def resume_mid_epoch(loop) -> int:
    """Make a resumed ``EpochBasedTrainLoop`` continue its epoch after the batches it trained.

    mmengine resumes an epoch-based loop at ``epoch`` and ``iter`` from the checkpoint, then runs
    the whole epoch again: a mid-epoch checkpoint (``iter > epoch * len(dataloader)``) trains its
    first batches twice. Here ``loop.dataloader`` is wrapped, for that epoch only, to draw and
    drop those ``iter - epoch * len(dataloader)`` batches (loading them, so the data pipeline's
    random draws are the uninterrupted run's) before it yields.

    Call after the checkpoint is loaded and before the epoch starts (``before_train``). The
    hooks' ``batch_idx`` counts from 0 again in that epoch (logging intervals shift).

    Returns:
        int: the batches skipped; 0 (nothing done) for another loop or a checkpoint of an
        epoch's end (``CheckpointHook(by_epoch=True)``).

    Raises:
        RuntimeError: an ``EpochBasedTrainLoop`` without ``dataloader`` / ``_epoch`` / ``_iter``.
    """
    if not isinstance(loop, EpochBasedTrainLoop):
        return 0
    for attribute in ('dataloader', 'epoch', 'iter'):
        if not hasattr(loop, attribute):
            raise _missing(f'EpochBasedTrainLoop.{attribute}', 'resuming mid-epoch')
    done = loop.iter - loop.epoch * len(loop.dataloader)
    # done == len: saved after the epoch's last batch but before its after_train_epoch (an
    # iteration-based save): the epoch ends at once, its end-of-epoch hooks (schedulers) run.
    if not 0 < done <= len(loop.dataloader):
        return 0
    loop.dataloader = _SkipFirstBatches(loop, done)
    return done


class _SkipFirstBatches:
    """Stands in for ``loop.dataloader`` for one epoch: its iterator first draws and drops
    ``skipped`` batches, calls ``callbacks``, puts the data loader back, then yields the rest."""

    def __init__(self, loop: EpochBasedTrainLoop, skipped: int) -> None:
        self._loop = loop
        self._dataloader = loop.dataloader
        self.skipped = skipped
        self.callbacks: List[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._dataloader)

    def __getattr__(self, name: str):
        # sampler, dataset, batch_sampler ... of the wrapped data loader (DistSamplerSeedHook)
        if name == '_dataloader':  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self._dataloader, name)

    def __iter__(self) -> Iterator:
        iterator = iter(self._dataloader)
        for _ in range(self.skipped):
            next(iterator)
        for callback in self.callbacks:
            callback()
        self._loop.dataloader = self._dataloader
        return iterator

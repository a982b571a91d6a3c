"""mmengine compatibility: the undocumented Runner, loop, hook and checkpoint state vkd_mmdet relies
on, each read or replaced in one function here. Should mmengine drop or rename it, that function
raises an :class:`~.upstream_api.UpstreamAPIError` naming the attribute instead of a hook silently
misbehaving.

Checked with mmengine 0.10.7 (what both pinned stacks install, ``requirements/pinned*.txt``);
``tests/test_compat/test_mmengine.py`` checks each against the installed mmengine.
"""
from typing import Callable, Iterator, List, Optional

from mmengine.hooks import CheckpointHook
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner import checkpoint as mmengine_checkpoint

from .upstream_api import upstream_attribute

#: The mmengine versions the attributes below were checked with.
CHECKED = '0.10.7'


def is_resuming(runner) -> bool:
    """Whether ``runner`` resumes a training (``resume=True``, ``--resume``) rather than only
    loading weights into a new one (``load_from``).

    mmengine calls ``after_load_checkpoint`` for both and gives hooks no public way to tell them
    apart; the runner keeps its ``resume`` argument in the private ``Runner._resume``
    (``FlexibleRunner._resume`` may hold the checkpoint path instead of True).

    Raises:
        UpstreamAPIError: ``runner`` has no ``_resume``.
    """
    return bool(upstream_attribute(runner, '_resume', 'mmengine', CHECKED,
                                   needed_for='telling --resume from load_from'))


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
        UpstreamAPIError: an ``IterBasedTrainLoop`` without ``dataloader_iterator``.
    """
    if not isinstance(loop, IterBasedTrainLoop):
        return False
    iterator = upstream_attribute(loop, 'dataloader_iterator', 'mmengine', CHECKED,
                                  needed_for='acting after the batches a resumed run replays')
    if loop.iter == 0:
        return False
    loop.dataloader_iterator = _CallAfterReplay(loop, iterator, loop.iter, callback)
    return True


class _CallAfterReplay:
    """Stands in for ``loop.dataloader_iterator`` for ``replayed`` batches, then calls
    ``callback`` and steps aside."""

    def __init__(self, loop: IterBasedTrainLoop, iterator: Iterator, replayed: int,
                 callback: Callable[[], None]) -> None:
        self._loop = loop
        self._iterator = iterator
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


def mmengine_home() -> str:
    """mmengine's cache folder (``$MMENGINE_HOME``, else ``$XDG_CACHE_HOME/mmengine``, else
    ``~/.cache/mmengine``), created if missing: where an ``open-mmlab://`` name that maps to a
    relative path is read from.

    Relies on ``mmengine.runner.checkpoint._get_mmengine_home()`` (private; mmengine has no public
    accessor): the same folder mmengine's own ``open-mmlab://`` loader reads.
    """
    return upstream_attribute(mmengine_checkpoint, '_get_mmengine_home', 'mmengine', CHECKED, (),
                              needed_for='the open-mmlab:// scheme')()


def _checkpoint_hook_setting(hook: CheckpointHook, name: str) -> object:
    return upstream_attribute(hook, name, 'mmengine', CHECKED,
                              needed_for="knowing when and where CheckpointHook saves")


def checkpoint_hook_saves_now(hook: CheckpointHook, runner, by_epoch: bool) -> bool:
    """Whether ``hook`` saves a periodic or last checkpoint at the end of the current training
    iteration (``by_epoch=False``) or epoch (``by_epoch=True``): its own rule, read from the
    constructor arguments it keeps (``by_epoch``, ``interval``, ``save_begin``, ``save_last``;
    mmengine 0.10.7 documents the arguments, not the attributes).

    Args:
        hook (CheckpointHook): one of ``runner.hooks``.
        runner: the runner.
        by_epoch (bool): the end of an epoch rather than of an iteration.
    """
    if _checkpoint_hook_setting(hook, 'by_epoch') != by_epoch:
        return False
    interval = _checkpoint_hook_setting(hook, 'interval')
    save_begin = _checkpoint_hook_setting(hook, 'save_begin')
    save_last = _checkpoint_hook_setting(hook, 'save_last')
    if by_epoch:
        return bool(hook.every_n_epochs(runner, interval, save_begin)
                    or (save_last and hook.is_last_train_epoch(runner)))
    return bool(hook.every_n_train_iters(runner, interval, save_begin)
                or (save_last and hook.is_last_train_iter(runner)))


def checkpoint_hook_files(hook: CheckpointHook) -> List[Optional[str]]:
    """The last checkpoint ``hook`` wrote in this run and, with ``save_best``, the best one(s)
    (None where it wrote none): ``last_ckpt``, ``best_ckpt_path`` (one metric) and
    ``best_ckpt_path_dict`` (several), the attributes its own ``after_train`` publishes."""
    files = [_checkpoint_hook_setting(hook, 'last_ckpt')]
    if _checkpoint_hook_setting(hook, 'save_best') is not None:
        # one of the two, depending on the number of metrics
        files.append(getattr(hook, 'best_ckpt_path', None))
        files.extend((getattr(hook, 'best_ckpt_path_dict', None) or {}).values())
    return files

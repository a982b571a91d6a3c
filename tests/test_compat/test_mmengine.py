"""vkd_mmdet.compat.mmengine against mmengine's real Runner, IterBasedTrainLoop and CheckpointHook,
and a loud error when mmengine no longer has the attribute an adapter relies on."""
import os

import pytest
from mmengine.hooks import CheckpointHook, Hook
from toy_runner import toy_runner

from vkd_mmdet.compat import UpstreamAPIError
from vkd_mmdet.compat.mmengine import (
    after_replayed_batches,
    checkpoint_hook_files,
    checkpoint_hook_saves_now,
    is_resuming,
    mmengine_home,
)


class ReplayProbeHook(Hook):
    """Records, as ``(event, iteration, samples read so far)``, when the callback given to
    ``after_replayed_batches`` runs and when each training iteration starts."""

    def __init__(self) -> None:
        self.events = []
        self.installed = None

    def _record(self, runner, event: str) -> None:
        self.events.append((event, runner.iter, len(runner.train_dataloader.dataset.reads)))

    def before_train_epoch(self, runner) -> None:
        self.installed = after_replayed_batches(runner.train_loop,
                                                lambda: self._record(runner, 'callback'))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._record(runner, 'iteration')


@pytest.mark.parametrize('resume', [False, True])
def test_is_resuming_is_the_runners_resume_argument(tmp_path, resume):
    assert is_resuming(toy_runner(tmp_path, resume=resume)) is resume


def test_is_resuming_fails_loudly_without_the_private_attribute(tmp_path, monkeypatch):
    runner = toy_runner(tmp_path, resume=True)
    monkeypatch.delattr(runner, '_resume')
    with pytest.raises(UpstreamAPIError,
                       match=r'^mmengine \S+: Runner\._resume is missing.*--resume from load_from'):
        is_resuming(runner)


def test_callback_runs_after_the_real_loops_replay(tmp_path):
    toy_runner(tmp_path / 'first').train()  # checkpoints after iterations 2 and 4
    probe = ReplayProbeHook()
    runner = toy_runner(tmp_path / 'resumed', train_cfg=dict(by_epoch=False, max_iters=3),
                        custom_hooks=[probe], resume=True,
                        load_from=str(tmp_path / 'first' / 'iter_2.pth'))
    inner = runner.train_loop.dataloader_iterator
    runner.train()
    assert probe.installed
    # Resumed at iteration 2: the loop reads the two trained samples again, then the callback
    # runs, then the loop reads the sample of iteration 2 and trains on it.
    assert probe.events == [('callback', 2, 2), ('iteration', 2, 3)]
    assert runner.train_loop.dataloader_iterator is inner  # mmengine's own iterator again


@pytest.mark.parametrize('train_cfg', [dict(by_epoch=False, max_iters=2),
                                       dict(by_epoch=True, max_epochs=1)],
                         ids=['iteration 0', 'epoch loop'])
def test_nothing_is_replayed_at_iteration_0_or_by_an_epoch_loop(tmp_path, train_cfg):
    probe = ReplayProbeHook()
    toy_runner(tmp_path, train_cfg=train_cfg, custom_hooks=[probe]).train()
    assert probe.installed is False
    assert all(event == 'iteration' for event, _, _ in probe.events)


def test_after_replayed_batches_fails_loudly_without_the_iterator(tmp_path, monkeypatch):
    loop = toy_runner(tmp_path).train_loop
    monkeypatch.delattr(loop, 'dataloader_iterator')
    with pytest.raises(UpstreamAPIError,
                       match=r'^mmengine \S+: IterBasedTrainLoop\.dataloader_iterator is missing'):
        after_replayed_batches(loop, lambda: None)


class SavePredictionHook(Hook):
    """Records the iterations / epochs after which ``checkpoint_hook_saves_now`` predicts a save;
    runs before ``CheckpointHook`` (priority VERY_LOW) at the same points."""

    priority = 'LOW'

    def __init__(self) -> None:
        self.predicted = []

    def _predict(self, runner, by_epoch: bool) -> None:
        hook = next(hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
        if checkpoint_hook_saves_now(hook, runner, by_epoch):
            self.predicted.append(f'{"epoch" if by_epoch else "iter"}_'
                                  f'{(runner.epoch if by_epoch else runner.iter) + 1}.pth')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._predict(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._predict(runner, by_epoch=True)


@pytest.mark.parametrize('train_cfg, checkpoint', [
    (dict(by_epoch=False, max_iters=8), dict(by_epoch=False, interval=3, save_begin=2)),
    (dict(by_epoch=False, max_iters=5), dict(by_epoch=False, interval=2, save_last=False)),
    (dict(by_epoch=True, max_epochs=3), dict(by_epoch=True, interval=2)),
], ids=['iterations, save_begin, last', 'iterations, no last', 'epochs, last'])
def test_checkpoint_hook_saves_now_predicts_the_real_hooks_saves(tmp_path, train_cfg, checkpoint):
    probe = SavePredictionHook()
    runner = toy_runner(tmp_path, train_cfg=train_cfg, custom_hooks=[probe],
                        default_hooks=dict(checkpoint=dict(type='CheckpointHook', **checkpoint)))
    runner.train()
    saved = sorted(name for name in os.listdir(tmp_path) if name.endswith('.pth'))
    assert saved and sorted(probe.predicted) == saved
    hook = next(hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
    assert checkpoint_hook_files(hook) == [str(tmp_path / probe.predicted[-1])]


def test_checkpoint_hook_adapters_fail_loudly_without_an_attribute(tmp_path):
    runner = toy_runner(tmp_path)
    hook = next(hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
    del hook.save_begin
    with pytest.raises(UpstreamAPIError, match=r'^mmengine \S+: CheckpointHook\.save_begin is '):
        checkpoint_hook_saves_now(hook, runner, by_epoch=False)
    del hook.last_ckpt
    with pytest.raises(UpstreamAPIError, match=r'CheckpointHook\.last_ckpt is missing'):
        checkpoint_hook_files(hook)


def test_mmengine_home_is_where_mmengine_reads_open_mmlab_files(tmp_path, monkeypatch):
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'home'))
    assert mmengine_home() == str(tmp_path / 'home')
    assert (tmp_path / 'home').is_dir()
    monkeypatch.delenv('MMENGINE_HOME')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert mmengine_home() == str(tmp_path / 'cache' / 'mmengine')

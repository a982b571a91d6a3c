"""Preemption: a 2-rank run sent SIGTERM saves a complete checkpoint after the iteration in
progress and exits with the requeue status; ``--resume`` ends with the uninterrupted run's
student."""
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from vkd_mmdet.engine.hooks import REQUEUE_EXIT_CODE, PreemptionHook
from vkd_mmdet.utils import find_resumable_checkpoint

from .conftest import (
    NO_EXPORT,
    NO_VAL,
    REPO,
    assert_resumed_like_uninterrupted,
    free_port,
    probe_config,
    student_state,
    subprocess_env,
    tool_main,
)


def _dist_train(config: str, work_dir, *args: str, options=(NO_EXPORT, )) -> subprocess.Popen:
    env = dict(subprocess_env(), PYTHON=sys.executable, PORT=str(free_port()))
    return subprocess.Popen(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'), config, '2', '--work-dir',
         str(work_dir), *args, '--cfg-options', *options, *NO_VAL], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)


def _finish(job: subprocess.Popen, timeout: int = 240) -> str:
    try:
        output, _ = job.communicate(timeout=timeout)
    finally:
        if job.poll() is None:
            job.kill()
    return output


def test_sigterm_saves_exits_and_resumes_to_the_uninterrupted_result(tiny_run, tmp_path):
    # Uninterrupted: 4 iterations on 2 ranks.
    full_dir = tmp_path / 'full'
    job = _dist_train(tiny_run['config'], full_dir)
    output = _finish(job)
    assert job.returncode == 0, 'uninterrupted run: ' + output[-6000:]
    full = student_state(str(full_dir / 'iter_4.pth'))

    # The same run: after iteration 3 both ranks wait; only rank 1 gets SIGTERM (as when the
    # scheduler's signal reaches the ranks at different times). Both must stop after iteration 3.
    markers = tmp_path / 'markers'
    markers.mkdir()
    config = probe_config(tiny_run, 'wait_after_3',
                          f"[dict(type='WaitAfterIterHook', at_iter=3, marker_dir='{markers}')]")
    work_dir = tmp_path / 'preempted'
    job = _dist_train(config, work_dir, options=())
    try:
        deadline = time.time() + 180
        while len(list(markers.glob('rank*.pid'))) < 2 and job.poll() is None \
                and time.time() < deadline:
            time.sleep(0.2)
        if len(list(markers.glob('rank*.pid'))) < 2:
            raise AssertionError('the ranks never reached iteration 3:\n' + _finish(job)[-6000:])
        os.kill(int((markers / 'rank1.pid').read_text()), signal.SIGTERM)
        time.sleep(1)
        (markers / 'go').touch()
        output = _finish(job)
    finally:
        if job.poll() is None:
            job.kill()
    # torchrun reports each worker's status: both saved-and-exited with the requeue status.
    assert job.returncode != 0, output[-6000:]
    for rank in (0, 1):
        assert re.search(rf'rank +: {rank} \(local_rank: {rank}\)\s+exitcode +: '
                         rf'{REQUEUE_EXIT_CODE} ', output), output[-6000:]
    # Rank 0 (which logs) got no signal itself: the all-reduced flag stopped it.
    assert 'a signal to another rank received; stopped after iteration 3' in output, \
        output[-6000:]
    # The periodic checkpoint of iteration 2, the preemption's of iteration 3, nothing later,
    # no temporary file left; --resume picks iteration 3.
    assert sorted(p.name for p in work_dir.glob('iter_*')) == ['iter_2.pth', 'iter_3.pth']
    assert not list(work_dir.glob('*.part'))
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'iter_3.pth')
    assert find_resumable_checkpoint(str(work_dir)) == str(work_dir / 'iter_3.pth')

    job = _dist_train(tiny_run['config'], work_dir, '--resume')
    output = _finish(job)
    assert job.returncode == 0, 'resumed run: ' + output[-6000:]
    assert 'Resuming' in output or 'resumed' in output.lower(), output[-6000:]
    assert_resumed_like_uninterrupted(student_state(str(work_dir / 'iter_4.pth')), full,
                                      student_state(str(work_dir / 'iter_3.pth')))


def test_sigusr1_in_one_process_saves_and_exits_with_the_requeue_status(tiny_run, tmp_path):
    config = probe_config(tiny_run, 'usr1_at_1',
                          "[dict(type='SignalSelfHook', at_iter=1, signal_name='SIGUSR1')]")
    with pytest.raises(SystemExit) as exit_info:
        tool_main('train')([config, '--work-dir', str(tmp_path), '--cfg-options', *NO_VAL,
                            'experiment_name=usr1'])
    assert exit_info.value.code == REQUEUE_EXIT_CODE
    # Stopped after the iteration the signal arrived in (the second).
    assert sorted(p.name for p in tmp_path.glob('iter_*')) == ['iter_2.pth']
    saved = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert saved['meta']['iter'] == 2 and {'optimizer', 'param_schedulers'} <= saved.keys()
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    # The signals stay ignored until the process exits; put the defaults back for the tests.
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_a_save_cut_short_leaves_the_previous_checkpoint_for_resume(tmp_path):
    """A job killed while rank 0 writes: the half file stays ``.part``, ``last_checkpoint``
    still names the previous checkpoint, which --resume picks."""
    previous = tmp_path / 'iter_2.pth'
    torch.save({'state_dict': {}}, previous)
    (tmp_path / 'last_checkpoint').write_text(str(previous))

    def killed_while_writing(out_dir, filename, **kwargs):
        full = tmp_path / 'full.bin'
        torch.save({'state_dict': {'w': torch.zeros(1000)}}, full)
        (tmp_path / filename).write_bytes(full.read_bytes()[:500])
        full.unlink()
        raise KeyboardInterrupt  # stands in for the SIGKILL: nothing after this line runs

    runner = SimpleNamespace(work_dir=str(tmp_path), iter=2, epoch=0, hooks=[],
                             train_loop=None, save_checkpoint=killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        PreemptionHook().save(runner)
    assert (tmp_path / 'iter_3.pth.part').exists() and not (tmp_path / 'iter_3.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text() == str(previous)
    assert find_resumable_checkpoint(str(tmp_path)) == str(previous)


EPOCH_BASED = """
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_interval=1000)
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]))
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1))
"""


def test_epoch_based_run_preempted_mid_epoch_resumes_exactly(tiny_run, tmp_path, one_thread):
    """4 batches an epoch, 2 epochs, random flips: SIGTERM during the second batch of epoch 2;
    the resumed run skips the epoch's 2 trained batches (not trains them again) and ends like
    the uninterrupted run."""
    hooks = "[dict(type='RNGStateHook'), dict(type='SignalSelfHook', at_iter={}, " \
        "signal_name='SIGTERM')]"
    full_cfg = probe_config(tiny_run, 'epochs_full', hooks.format(-1))
    stopped_cfg = probe_config(tiny_run, 'epochs_stopped', hooks.format(5))
    for path in (full_cfg, stopped_cfg):
        with open(path, 'a') as f:
            f.write(EPOCH_BASED)
    tool_main('train')([full_cfg, '--work-dir', str(tmp_path / 'full'), '--cfg-options',
                        *NO_VAL, 'experiment_name=epochs_full'])
    work_dir = tmp_path / 'stopped'
    try:
        with pytest.raises(SystemExit):
            tool_main('train')([stopped_cfg, '--work-dir', str(work_dir), '--cfg-options',
                                *NO_VAL, 'experiment_name=epochs_stopped'])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['epoch_1.pth', 'iter_6.pth']
    runner = tool_main('train')([full_cfg, '--work-dir', str(work_dir), '--resume',
                                 '--cfg-options', *NO_VAL, 'experiment_name=epochs_resumed'])
    assert (runner.epoch, runner.iter) == (2, 8)
    assert_resumed_like_uninterrupted(student_state(str(work_dir / 'epoch_2.pth')),
                                      student_state(str(tmp_path / 'full' / 'epoch_2.pth')),
                                      student_state(str(work_dir / 'iter_6.pth')))

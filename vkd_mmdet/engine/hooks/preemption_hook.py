"""Save and exit on the scheduler's warning signal, so a preempted or timed-out job loses
nothing: ``--resume`` continues from the iteration it stopped at."""
import os
import os.path as osp
import signal
import threading
from typing import Dict, Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...compat.mmengine import is_resuming, resume_mid_epoch
from .rng_state_hook import RNGStateHook

#: The exit status of a preempted run that saved its checkpoint: ``EX_TEMPFAIL`` of
#: ``sysexits.h`` ("temporary failure, retry later"). ``tools/slurm_train.sh`` requeues the job on
#: it; a cluster can list it in slurm.conf's ``RequeueExit``.
REQUEUE_EXIT_CODE = 75


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the current iteration on every rank, write a complete
    checkpoint and exit with :data:`REQUEUE_EXIT_CODE`.

    Slurm sends SIGTERM when it preempts a job (then SIGKILL after ``KillWait``, 30 s by default)
    and, with ``--signal=USR1@<seconds>``, SIGUSR1 that many seconds before the time limit;
    torchrun forwards the SIGTERM it receives to its workers (and kills them 30 s later). The
    signal handler only sets a flag; after each iteration the ranks all-reduce it (one scalar), so
    all of them stop after the same iteration even when the signal reached them at different
    times (or only some of them).

    The checkpoint is the runner's own (model, optimizer, schedulers, message hub and, with
    :class:`RNGStateHook`, every rank's random-generator states), named ``iter_<n>.pth`` like an
    iteration-based ``CheckpointHook``'s. It is written as ``iter_<n>.pth.part`` and renamed when
    complete, then ``last_checkpoint`` is replaced (also through a temporary file and a rename):
    a job killed while writing leaves no file that ``--resume``
    (:func:`~vkd_mmdet.utils.find_resumable_checkpoint`) would pick. All ranks wait for rank 0's
    save before exiting (a launcher that sees one rank exit kills the others), and ignore the
    handled signals from then until the process ends.

    Exactness of the resume: an ``IterBasedTrainLoop`` resumes at the next iteration (mmengine
    replays the trained batches of the data loader) and, with :class:`RNGStateHook` and a fixed
    seed, ends with the uninterrupted run's weights (tested with SIGTERM on 2 ranks). mmengine's
    ``EpochBasedTrainLoop`` would restart a mid-epoch checkpoint's epoch from its first batch;
    this hook, resuming, makes it draw and drop the batches already trained instead
    (:func:`~vkd_mmdet.compat.mmengine.resume_mid_epoch`, for any mid-epoch checkpoint),
    so it ends with the uninterrupted run's weights too (tested).

    ``tools/train.py`` adds this hook to every run unless the config lists it (then the config's
    arguments count); mmdet's own ``tools/train.py`` needs it in ``custom_hooks``.

    Args:
        signals (Sequence[str]): signal names to handle. Defaults to ``('SIGTERM', 'SIGUSR1')``.
        exit_code (int): the status to exit with after saving. Defaults to
            :data:`REQUEUE_EXIT_CODE` (75).

    Config:
        .. code-block:: python

            custom_hooks = [dict(type='PreemptionHook')]
    """

    priority = 'LOWEST'  # after the iteration's scheduler step and periodic checkpoint

    def __init__(self, signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = REQUEUE_EXIT_CODE) -> None:
        unknown = [name for name in signals if not hasattr(signal, name)]
        if unknown:
            raise ValueError(f'PreemptionHook: unknown signals {unknown} (expected names such as '
                             "'SIGTERM', 'SIGUSR1')")
        self.signals = [getattr(signal, name) for name in signals]
        self.exit_code = exit_code
        self.received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        # Only a flag: the iteration in progress (maybe inside a collective) runs to its end.
        self.received = signum

    def before_train(self, runner) -> None:
        if is_resuming(runner):
            skipped = resume_mid_epoch(runner.train_loop)
            if skipped:
                runner.logger.info(f'PreemptionHook: resuming epoch {runner.epoch + 1} after its '
                                   f'{skipped} trained batches (drawn and dropped)')
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning('PreemptionHook: training runs outside the main thread, where '
                                  'Python cannot handle signals; preemption is not handled')
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            # None: a handler installed from C, which Python cannot reinstate
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        flag = torch.tensor([0.0 if self.received is None else 1.0])
        if get_dist_info()[1] > 1:
            all_reduce(flag, op='sum')
        if flag.item() == 0:
            return
        name = signal.Signals(self.received).name if self.received is not None \
            else 'a signal to another rank'
        path = self.save(runner)
        runner.logger.warning(
            f'PreemptionHook: {name} received; stopped after iteration {runner.iter + 1}, saved '
            f'{path}; exiting with status {self.exit_code}. Run the same command with --resume '
            'to continue.')
        # A launcher that sees one rank exit signals the others, which must still exit with
        # this status rather than die of the signal; Python resets its own handlers to the
        # default (die) while it shuts down, not an ignored signal.
        for signum in self.signals:
            signal.signal(signum, signal.SIG_IGN)
        raise SystemExit(self.exit_code)

    def save(self, runner) -> str:
        """Write ``iter_<n>.pth`` atomically (rank 0) once every rank is ready; returns its path.

        Every rank must call it (the RNG states are gathered, the ranks wait for the write).
        """
        for hook in runner.hooks:
            if isinstance(hook, RNGStateHook):
                hook.gather_for_save(runner)
        filename = f'iter_{runner.iter + 1}.pth'
        path = osp.join(runner.work_dir, filename)
        rank, _ = get_dist_info()
        # Runner.save_checkpoint writes on rank 0 only; the meta says iteration n, as the
        # iteration-based CheckpointHook's.
        runner.save_checkpoint(runner.work_dir, filename + '.part', by_epoch=False)
        if rank == 0:
            os.replace(path + '.part', path)
            record = osp.join(runner.work_dir, 'last_checkpoint')
            with open(record + '.part', 'w') as f:
                f.write(path)
            os.replace(record + '.part', record)
        barrier()
        return path

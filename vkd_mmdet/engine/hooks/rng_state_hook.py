"""Keep the random-number generators' states in checkpoints, so ``--resume`` continues them."""
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

#: The checkpoint key the states are stored under.
RNG_STATES_KEY = 'rng_states'


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store the RNG states in every checkpoint and restore them on resume: a resumed run draws
    the same random numbers as an uninterrupted one (nothing lost, nothing repeated).

    mmengine checkpoints keep the model, optimizer, schedulers and seed, but not the generators'
    states; a resumed run restarts them from the seed. Training with random RoI sampling
    (``RandomSampler``: torch), ``RandomFlip`` (numpy) or other random transforms then diverges
    from the uninterrupted run. This hook stores, per rank, Python's ``random``, numpy's global
    generator, torch's CPU generator and (once CUDA is in use) the CUDA generators of all visible
    devices, as plain types (tensors, ints, floats: even ``torch.load(weights_only=True)`` reads
    them) under ``checkpoint['rng_states'] = dict(world_size=W, ranks=[rank 0's, ..., W-1's])``.

    When the states are restored: only when the runner *resumes* (``resume=True`` /
    ``--resume``), never for ``load_from`` fine-tuning (a new run with fresh streams). Not when
    the checkpoint is loaded (mmengine may re-seed after that, and ``IterBasedTrainLoop`` replays
    the batches it skips, which draws random numbers with ``num_workers=0``), but at the point
    where the uninterrupted run fetched its next training batch: after the replayed batches
    (``IterBasedTrainLoop``) or at the start of the next epoch (``EpochBasedTrainLoop``).
    Validation draws from the same generators (each ``DataLoader`` iterator draws a base seed from
    torch's): the hook sets the training states aside during validation and puts them back after,
    so validating (or not, as in a resumed run) never shifts the training streams.

    Distributed: each rank's own states are stored, gathered to rank 0 (which writes the
    checkpoint) in the training step where a ``CheckpointHook`` is due to save, and before each
    validation (for ``save_best`` checkpoints); a single process gathers nothing. A resume with a
    different world size restores nothing and warns: the ranks' data shards differ then, so an
    exact resume is impossible and the seeded streams are as good as any.

    Where data augmentation draws its random numbers, and when the resume is exact:

    - ``num_workers=0``: in the main process, from the stored generators: exact.
    - ``num_workers>0``: in the workers, which mmengine seeds with ``seed + worker_id +
      num_workers * rank`` whenever they start (not per epoch: the seed does not change). The
      workers' states are not stored; ``IterBasedTrainLoop``'s resume replays the skipped batches
      through freshly seeded workers, which then continue exactly as in the uninterrupted run.
      ``EpochBasedTrainLoop`` (resume at an epoch boundary) is exact with
      ``persistent_workers=False`` (every epoch restarts the workers from the same seed) and not
      with ``persistent_workers=True`` (the uninterrupted run's workers carry their state across
      epochs; the resumed run's start afresh).
    - Either way the seed must be fixed (``randomness=dict(seed=...)``): the sampler's shuffle
      and the workers' seeds are built from the new run's seed before the checkpoint is read, and
      with ``seed=None`` that seed is a new random one (the hook warns).
    - An ``EpochBasedTrainLoop`` resumed from a mid-epoch checkpoint repeats that epoch
      (mmengine's behaviour), exact or not.

    Config:
        .. code-block:: python

            custom_hooks = [dict(type='RNGStateHook')]
    """

    priority = 'LOW'  # before CheckpointHook (VERY_LOW) in after_train_iter/epoch, after_val_epoch

    def __init__(self) -> None:
        self._resume_state: Optional[dict] = None  # this rank's states, waiting to be restored
        self._gathered: Optional[tuple] = None  # ((epoch, iter), all ranks' states) for a save
        self._val_states: Optional[List[dict]] = None  # training states set aside during val

    # ------------------------------------------------------------------ the states themselves

    @staticmethod
    def get_state() -> dict:
        """This process's generator states, as plain types."""
        version, internal, gauss_next = random.getstate()
        np_state = np.random.get_state(legacy=False)
        state = dict(
            python=dict(version=version, internal=torch.tensor(internal, dtype=torch.int64),
                        gauss_next=gauss_next),
            numpy=dict(bit_generator=np_state['bit_generator'],
                       key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                       pos=int(np_state['state']['pos']), has_gauss=int(np_state['has_gauss']),
                       gauss=float(np_state['gauss'])),
            torch=torch.get_rng_state())
        # Only once CUDA is in use: querying it would otherwise initialise CUDA in CPU runs.
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['torch_cuda'] = torch.cuda.get_rng_state_all()
        return state

    @staticmethod
    def set_state(state: dict) -> None:
        """Restore states from :meth:`get_state` (tensors anywhere: resuming maps the checkpoint
        to the training device, the generators take CPU tensors)."""
        python = state['python']
        random.setstate((python['version'], tuple(int(v) for v in python['internal'].tolist()),
                         python['gauss_next']))
        numpy = state['numpy']
        np.random.set_state(dict(
            bit_generator=numpy['bit_generator'],
            state=dict(key=numpy['key'].cpu().numpy().astype(np.uint32), pos=numpy['pos']),
            has_gauss=numpy['has_gauss'], gauss=numpy['gauss']))
        torch.set_rng_state(state['torch'].cpu())
        cuda_states = state.get('torch_cuda')
        if cuda_states and torch.cuda.is_available():
            if len(cuda_states) != torch.cuda.device_count():
                print_log(f'RNGStateHook: the checkpoint holds the CUDA RNG states of '
                          f'{len(cuda_states)} devices, this process sees '
                          f'{torch.cuda.device_count()}; restoring the first '
                          f'{min(len(cuda_states), torch.cuda.device_count())}',
                          logger='current', level=logging.WARNING)
            for device, cuda_state in enumerate(cuda_states[:torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state.cpu(), device)

    def _all_ranks(self) -> List[dict]:
        """Every rank's states (a collective under DDP: all ranks must call it)."""
        _, world_size = get_dist_info()
        state = self.get_state()
        return all_gather_object(state) if world_size > 1 else [state]

    # ------------------------------------------------------------------ saving

    @staticmethod
    def _save_due(runner, by_epoch: bool) -> bool:
        """Whether a CheckpointHook saves at this point (its own rule for periodic/last saves)."""
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or hook.by_epoch != by_epoch:
                continue
            if by_epoch:
                last = hook.save_last and hook.is_last_train_epoch(runner)
                due = hook.every_n_epochs(runner, hook.interval, hook.save_begin)
            else:
                last = hook.save_last and hook.is_last_train_iter(runner)
                due = hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
            if due or last:
                return True
        return False

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        if get_dist_info()[1] > 1 and self._save_due(runner, by_epoch):
            self._gathered = ((runner.epoch, runner.iter), self._all_ranks())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        _, world_size = get_dist_info()
        if self._val_states is not None:  # a save_best checkpoint, written during validation
            states = self._val_states
        elif world_size == 1:
            states = [self.get_state()]
        elif self._gathered is not None and self._gathered[0] == (runner.epoch, runner.iter):
            states = self._gathered[1]
        else:
            runner.logger.warning(
                'RNGStateHook: this checkpoint was not announced by a CheckpointHook, so only '
                'rank 0 RNG states are stored; a resume from it restores rank 0 only')
            states = [self.get_state()] + [None] * (world_size - 1)
        checkpoint[RNG_STATES_KEY] = dict(world_size=world_size, ranks=states)

    # ------------------------------------------------------------------ validation

    def before_val(self, runner) -> None:
        self._val_states = self._all_ranks()

    def after_val(self, runner) -> None:
        rank, _ = get_dist_info()
        self.set_state(self._val_states[rank])
        self._val_states = None

    # ------------------------------------------------------------------ resuming

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # mmengine calls this for `load_from` too; only a resume continues the old run's streams.
        if not getattr(runner, '_resume', False):
            return
        saved = checkpoint.get(RNG_STATES_KEY)
        if saved is None:
            runner.logger.warning(
                'RNGStateHook: the checkpoint holds no RNG states (written without this hook): '
                'the random streams restart from the seed, so random sampling and augmentation '
                'differ from the uninterrupted run')
            return
        rank, world_size = get_dist_info()
        if saved['world_size'] != world_size:
            runner.logger.warning(
                f'RNGStateHook: the checkpoint was written by {saved["world_size"]} ranks, this '
                f'run has {world_size}: the data shards differ, an exact resume is impossible; '
                'RNG states not restored (the seeded streams are used)')
            return
        if saved['ranks'][rank] is None:
            runner.logger.warning(f'RNGStateHook: the checkpoint holds no RNG states for rank '
                                  f'{rank}; its seeded streams are used')
            return
        saved_seed = checkpoint.get('meta', {}).get('seed')
        if saved_seed is not None and saved_seed != runner.seed:
            runner.logger.warning(
                f'RNGStateHook: the checkpoint was trained with seed {saved_seed}, this run\'s '
                f'data sampler and workers were built with seed {runner.seed}: the data order '
                'differs from the uninterrupted run; set `randomness=dict(seed=...)` for an '
                'exact resume')
        self._resume_state = saved['ranks'][rank]

    def before_train_epoch(self, runner) -> None:
        if self._resume_state is None:
            return
        state, self._resume_state = self._resume_state, None
        loop = runner.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None and loop.iter > 0:
            # IterBasedTrainLoop replays `iter` batches right after this hook: restore after them.
            loop.dataloader_iterator = _RestoreAfterReplay(loop, loop.iter, state)
        else:
            self.set_state(state)


class _RestoreAfterReplay:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` while the loop replays the
    batches a resumed run skips; after the last one, restores the states and steps aside."""

    def __init__(self, loop, replayed: int, state: dict) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._left = replayed
        self._state = state

    def __iter__(self) -> '_RestoreAfterReplay':
        return self

    def __next__(self):
        batch = next(self._iterator)
        self._left -= 1
        if self._left == 0:
            RNGStateHook.set_state(self._state)
            self._loop.dataloader_iterator = self._iterator
        return batch

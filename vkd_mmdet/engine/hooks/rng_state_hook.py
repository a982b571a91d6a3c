"""Keep the random-number generators' states in checkpoints, so ``--resume`` continues them."""
from typing import List, Optional

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from ...compat.mmengine import after_replayed_batches, checkpoint_hook_saves_now, is_resuming
from ...utils.rng_states import get_rng_states, set_rng_states

#: The checkpoint key the states are stored under.
RNG_STATES_KEY = 'rng_states'


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store the RNG states in every checkpoint and restore them on resume: a resumed run draws
    the same random numbers as an uninterrupted one (nothing lost, nothing repeated).

    mmengine checkpoints keep the model, optimizer, schedulers and seed, but not the generators'
    states; a resumed run restarts them from the seed. Training with random RoI sampling
    (``RandomSampler``: torch), ``RandomFlip`` (numpy) or other random transforms then diverges
    from the uninterrupted run. This hook stores, per rank, the states of
    :func:`~vkd_mmdet.utils.rng_states.get_rng_states` (Python, numpy, torch CPU and CUDA) under
    ``checkpoint['rng_states'] = dict(world_size=W, ranks=[rank 0's, ..., W-1's])``.

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

    def _all_ranks(self) -> List[dict]:
        """Every rank's states (a collective under DDP: all ranks must call it)."""
        _, world_size = get_dist_info()
        states = get_rng_states()
        return all_gather_object(states) if world_size > 1 else [states]

    # ------------------------------------------------------------------ saving

    @staticmethod
    def _save_due(runner, by_epoch: bool) -> bool:
        """Whether a CheckpointHook saves at this point (its own rule for periodic/last saves)."""
        return any(checkpoint_hook_saves_now(hook, runner, by_epoch) for hook in runner.hooks
                   if isinstance(hook, CheckpointHook))

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
            states = [get_rng_states()]
        elif self._gathered is not None and self._gathered[0] == (runner.epoch, runner.iter):
            states = self._gathered[1]
        else:
            runner.logger.warning(
                'RNGStateHook: this checkpoint was not announced by a CheckpointHook, so only '
                'rank 0 RNG states are stored; a resume from it restores rank 0 only')
            states = [get_rng_states()] + [None] * (world_size - 1)
        checkpoint[RNG_STATES_KEY] = dict(world_size=world_size, ranks=states)

    # ------------------------------------------------------------------ validation

    def before_val(self, runner) -> None:
        self._val_states = self._all_ranks()

    def after_val(self, runner) -> None:
        rank, _ = get_dist_info()
        set_rng_states(self._val_states[rank])
        self._val_states = None

    # ------------------------------------------------------------------ resuming

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # mmengine calls this for `load_from` too; only a resume continues the old run's streams.
        if not is_resuming(runner):
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
        states, self._resume_state = self._resume_state, None
        # IterBasedTrainLoop replays the trained batches right after this hook, drawing random
        # numbers (with num_workers=0): the uninterrupted run's next batch comes after them.
        if not after_replayed_batches(runner.train_loop, lambda: set_rng_states(states)):
            set_rng_states(states)

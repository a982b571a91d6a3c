"""RNGStateHook: the generators' states survive a checkpoint, and ``--resume`` of a training with
random RoI sampling and random flips ends where the uninterrupted run ends."""
import os
import random
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.hooks import CheckpointHook
from test_tools.conftest import (
    CONFIG,
    NO_VAL,
    assert_resumed_like_uninterrupted,
    student_state,
    tiny_pair,
    tool_main,
)
from toy_runner import toy_runner

from vkd_mmdet.engine.hooks import RNGStateHook
from vkd_mmdet.testing import (
    CLASSES,
)
from vkd_mmdet.utils import get_rng_states, set_rng_states

DRAWS = {
    'python': lambda: [random.random() for _ in range(3)] + [random.gauss(0, 1)],
    'numpy': lambda: np.concatenate([np.random.rand(3), np.random.randn(1)]).tolist(),
    'torch': lambda: torch.rand(3).tolist() + torch.randperm(50).tolist(),
}
if torch.cuda.is_available():
    DRAWS['torch_cuda'] = lambda: torch.rand(3, device='cuda').tolist()


@pytest.fixture(autouse=True)
def _cuda_in_use():
    """The hook stores CUDA states once CUDA is in use, as it is in GPU training."""
    if torch.cuda.is_available():
        torch.zeros(1, device='cuda')


def _draw_all() -> dict:
    return {name: draw() for name, draw in DRAWS.items()}


def _runner(resume: bool, seed: int = 0) -> SimpleNamespace:
    """What the hook reads of a runner; its train loop is an epoch loop's (nothing replayed)."""
    return SimpleNamespace(_resume=resume, seed=seed, logger=mock.Mock(), hooks=[],
                           train_loop=SimpleNamespace(iter=0), epoch=0, iter=0)


def _saved_checkpoint(tmp_path) -> dict:
    """A checkpoint the hook filled, through a file, read back with torch's *safe* loader."""
    checkpoint = dict(meta=dict(seed=0))
    RNGStateHook().before_save_checkpoint(_runner(resume=False), checkpoint)
    torch.save(checkpoint, tmp_path / 'ckpt.pth')
    return torch.load(tmp_path / 'ckpt.pth', weights_only=True)


@pytest.mark.parametrize('name', sorted(DRAWS))
def test_state_round_trip_per_generator(name):
    state = get_rng_states()
    expected = DRAWS[name]()
    DRAWS[name]()  # the generator moved on
    set_rng_states(state)
    assert DRAWS[name]() == expected


def test_round_trip_through_a_safe_loaded_checkpoint(tmp_path):
    random.gauss(0, 1)  # python and numpy hold a cached Gaussian: it must survive too
    np.random.randn(1)
    checkpoint = _saved_checkpoint(tmp_path)
    expected = _draw_all()

    hook = RNGStateHook()
    runner = _runner(resume=True)
    hook.after_load_checkpoint(runner, checkpoint)
    assert _draw_all() != expected  # loading alone restores nothing: mmengine may re-seed later
    hook.before_train_epoch(runner)  # epoch loop: the next epoch starts from the stored states
    assert _draw_all() == expected
    runner.logger.warning.assert_not_called()


def test_iter_loop_restores_after_the_replayed_batches(tmp_path):
    """On mmengine's IterBasedTrainLoop, resumed at iteration 2 of 4: the loop reads the two
    trained samples again (drawing random numbers), then the uninterrupted run's draws follow."""
    def train(name, hooks, **resume):
        runner = toy_runner(tmp_path / name, custom_hooks=hooks, **resume)
        runner.train()
        return runner.train_dataloader.dataset.reads, runner.model.linear.weight.detach()

    full_reads, full_weight = train('full', [RNGStateHook()])
    checkpoint = dict(resume=True, load_from=str(tmp_path / 'full' / 'iter_2.pth'))
    reads, weight = train('resumed', [RNGStateHook()], **checkpoint)
    plain_reads, _ = train('resumed_without_hook', [], **checkpoint)
    assert [index for index, _ in reads] == [0, 1, 2, 3]  # two replayed, two trained
    assert reads[2:] == full_reads[2:]
    assert torch.equal(weight, full_weight)
    assert plain_reads[2:] != full_reads[2:]  # the seeded streams restart: other draws


def test_load_from_does_not_restore(tmp_path):
    checkpoint = _saved_checkpoint(tmp_path)
    expected = _draw_all()
    hook, runner = RNGStateHook(), _runner(resume=False)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train_epoch(runner)
    assert _draw_all() != expected


@pytest.mark.parametrize('case', ['no states', 'other world size', 'other seed'])
def test_resume_warns_when_it_cannot_be_exact(tmp_path, case):
    checkpoint = _saved_checkpoint(tmp_path)
    if case == 'no states':
        del checkpoint['rng_states']
    elif case == 'other world size':
        checkpoint['rng_states']['world_size'] = 2
    else:
        checkpoint['meta']['seed'] = 1
    expected = _draw_all()
    hook, runner = RNGStateHook(), _runner(resume=True)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train_epoch(runner)
    runner.logger.warning.assert_called_once()
    # Only a different seed still restores the states (the data order is what differs).
    assert (_draw_all() == expected) == (case == 'other seed')


def test_validation_leaves_the_training_streams_alone():
    hook, runner = RNGStateHook(), _runner(resume=False)
    state = get_rng_states()
    expected = _draw_all()
    set_rng_states(state)
    hook.before_val(runner)
    _draw_all()  # validation draws (a DataLoader iterator draws a base seed, for one)
    hook.after_val(runner)
    assert _draw_all() == expected


def _ddp_worker(rank, world_size, port, path, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        random.seed(rank)  # each rank its own streams
        np.random.seed(rank)
        torch.manual_seed(rank)
        cpu_draws = {name: DRAWS[name] for name in ('python', 'numpy', 'torch')}
        # Iteration 2 of 10 with a checkpoint every 2 iterations: a save is due.
        runner = _runner(resume=False)
        runner.hooks = [CheckpointHook(interval=2, by_epoch=False)]
        runner.iter, runner.max_iters = 1, 10
        hook = RNGStateHook()
        hook.after_train_iter(runner, batch_idx=1)  # a collective: every rank sends its states
        expected = {name: draw() for name, draw in cpu_draws.items()}
        if rank == 0:  # mmengine writes checkpoints on rank 0 only
            checkpoint = dict(meta=dict(seed=0))
            hook.before_save_checkpoint(runner, checkpoint)
            torch.save(checkpoint, path)
        dist.barrier()

        resumed, runner._resume = RNGStateHook(), True
        resumed.after_load_checkpoint(runner, torch.load(path, weights_only=True))
        resumed.before_train_epoch(runner)
        results[rank] = (expected, {name: draw() for name, draw in cpu_draws.items()},
                         runner.logger.warning.called)
    finally:
        dist.destroy_process_group()


def test_each_rank_resumes_its_own_streams(tmp_path):
    """Two gloo ranks: rank 0's checkpoint holds both ranks' states; each restores its own."""
    results = mp.Manager().dict()
    port = 29600 + os.getpid() % 1000
    # fork: the ranks inherit the imported stack instead of importing it again (seconds each).
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path / 'ckpt.pth'), results),
                       nprocs=2, join=True, start_method='fork')
    (expected_0, restored_0, warned_0), (expected_1, restored_1, warned_1) = results[0], results[1]
    assert expected_0 != expected_1  # the ranks' streams differ
    assert (restored_0, restored_1) == (expected_0, expected_1)
    assert not warned_0 and not warned_1


# ---------------------------------------------------------------------------------- training

FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
# Over test_tools' tiny distillation config: a Faster R-CNN pair (random RPN and RoI sampling),
# RandomFlip (numpy, in the main process with num_workers=0) and an infinite sampler (the
# finite one makes IterBasedTrainLoop sleep 2 s at each restart).
RANDOM_TRAINING = """
_base_ = ['{base}']
custom_hooks = {custom_hooks}
train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(96, 64), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]))
"""


@pytest.fixture(scope='module')
def random_training(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('rng_state')
    teacher, student, teacher_ckpt = tiny_pair(root, FASTER_RCNN, num_val=1)
    # The models by `cfg_path`: mmengine formats the whole config (yapf) five times per run,
    # which takes longer than the training when two full detector dicts are inline.
    for name, model in (('student', student), ('teacher', teacher)):
        (root / f'{name}.py').write_text(f'model = {model.to_dict()!r}\n')
    base = root / 'tiny_vkd_faster_rcnn.py'
    base.write_text(CONFIG.format(data_root=root / 'data', classes=CLASSES,
                                  student=dict(cfg_path=str(root / 'student.py')),
                                  teacher=dict(cfg_path=str(root / 'teacher.py')),
                                  teacher_ckpt=teacher_ckpt))
    configs = {}
    for name, hooks in (('hook', "[dict(type='RNGStateHook')]"), ('plain', '[]')):
        configs[name] = root / f'random_training_{name}.py'
        configs[name].write_text(RANDOM_TRAINING.format(base=base, custom_hooks=hooks))
    return configs


def _train(config, work_dir, *options: str, resume: str = None) -> None:
    resume_args = ['--resume', resume] if resume else []
    tool_main('train')([str(config), '--work-dir', str(work_dir), *resume_args,
                        '--cfg-options', *NO_VAL, *options, f'experiment_name=rng_{work_dir.name}'])


def test_resume_of_random_training_is_exact_with_the_hook_only(random_training, tmp_path):
    # Uninterrupted: 4 iterations, checkpoints after 2 and 4.
    _train(random_training['hook'], tmp_path / 'full')
    full = student_state(str(tmp_path / 'full' / 'iter_4.pth'))
    half = str(tmp_path / 'full' / 'iter_2.pth')
    # Resumed from iteration 2, with the hook and without it.
    _train(random_training['hook'], tmp_path / 'resumed', resume=half)
    _train(random_training['plain'], tmp_path / 'resumed_without_hook', resume=half)
    resumed = student_state(str(tmp_path / 'resumed' / 'iter_4.pth'))
    resumed_without_hook = student_state(str(tmp_path / 'resumed_without_hook' / 'iter_4.pth'))

    assert_resumed_like_uninterrupted(resumed, full, student_state(half))
    # Without the hook the resumed run samples other anchors and RoIs (torch's stream restarts
    # from the seed; numpy's flips coincide: only the replayed data loading draws from it): its
    # student differs (measured: 1.4e-4 at most after two iterations; 0 with the hook).
    max_diff = max((resumed_without_hook[k].float() - full[k].float()).abs().max().item()
                   for k in full)
    assert max_diff > 1e-5, max_diff

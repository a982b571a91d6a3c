"""Runner resume on torch >= 2.6 (mmengine 0.10.7 calls torch.load without weights_only)."""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from torch.utils.data import Dataset

import vkd_mmdet  # noqa: F401  (installs the fix)
from vkd_mmdet.engine import trusted_checkpoints


class _Points(Dataset):

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=generator)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return dict(x=self.x[index], y=self.y[index])


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x, y, mode='loss'):
        return dict(loss=((self.linear(x) - y)**2).mean())


def _runner(work_dir, max_iters, resume=False):
    torch.manual_seed(0)  # same initial weights for every runner
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        # A fixed schedule end: the shorter first run is the longer one stopped early.
        param_scheduler=dict(type='MultiStepLR', milestones=[5], by_epoch=False, end=8),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
        randomness=dict(seed=0),
        resume=resume)


def test_runner_checkpoint_needs_more_than_the_safe_loader(tmp_path):
    """The premise: the runner's checkpoint holds objects torch's safe loader refuses."""
    _runner(tmp_path, 4).train()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'iter_4.pth', weights_only=True)


def test_runner_resumes_from_its_own_checkpoint_and_continues(tmp_path):
    _runner(tmp_path / 'full', 8).train()
    full = torch.load(tmp_path / 'full' / 'iter_8.pth', weights_only=False)

    _runner(tmp_path / 'split', 4).train()
    resumed = _runner(tmp_path / 'split', 8, resume=True)
    resumed.train()
    assert resumed.iter == 8
    split = torch.load(tmp_path / 'split' / 'iter_8.pth', weights_only=False)
    for key, value in full['state_dict'].items():
        torch.testing.assert_close(split['state_dict'][key], value)


class Payload:
    """An arbitrary pickled object: exactly what ``weights_only=True`` must refuse."""


def test_other_checkpoint_loads_keep_the_safe_loader(tmp_path):
    path = tmp_path / 'unsafe.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, payload=Payload()), path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path))
    with trusted_checkpoints():
        assert isinstance(CheckpointLoader.load_checkpoint(str(path))['payload'], Payload)

    plain = tmp_path / 'plain.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}), plain)
    assert CheckpointLoader.load_checkpoint(str(plain))['state_dict']['w'].item() == 1.0

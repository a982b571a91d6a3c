"""A toy mmengine ``Runner`` whose data loading and training step draw random numbers, for tests of
hooks and adapters against mmengine's own loops (seconds, not a detector's minutes)."""
import uuid
from pathlib import Path
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from vkd_mmdet import install_safe_loading


class RecordingDataset(Dataset):
    """Eight samples, each drawn from torch's generator when read (as random augmentation draws);
    ``reads`` lists ``(index, draw)`` in reading order."""

    def __init__(self) -> None:
        self.reads = []

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        draw = torch.rand(()).item()
        self.reads.append((index, draw))
        return dict(inputs=torch.full((2,), draw))


class RandomStepModel(BaseModel):
    """A linear layer whose loss draws from torch's generator (as random RoI sampling does)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        out = self.linear(inputs * torch.rand_like(inputs))
        return dict(loss=out.sum()) if mode == 'loss' else out


def toy_runner(work_dir: Path, train_cfg: Optional[dict] = None, custom_hooks: Sequence[Hook] = (),
               default_hooks: Optional[dict] = None, **kwargs) -> Runner:
    """A runner over :class:`RecordingDataset` (in order, one sample a batch, no workers: every
    read happens in this process) with a fixed seed; by default 4 iterations of an
    ``IterBasedTrainLoop`` with a checkpoint every 2. ``kwargs`` go to ``Runner``.

    Resuming reads the Runner's own checkpoints, which mmengine 0.10.7 cannot on torch >= 2.6
    (its local loader then defaults to ``weights_only=True``): vkd_mmdet's safe loading is
    installed, as building a distiller would (``Runner.load_checkpoint`` trusts local files)."""
    install_safe_loading()
    return Runner(
        model=RandomStepModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=RecordingDataset(), batch_size=1, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=train_cfg or dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=default_hooks or dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2)),
        custom_hooks=list(custom_hooks), randomness=dict(seed=0),
        experiment_name=f'toy_{uuid.uuid4().hex}', **kwargs)

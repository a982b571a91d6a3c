"""A random generator whose state is saved and restored with the model's state dict."""
import torch
import torch.nn as nn
from torch import Tensor


class CheckpointedGenerator(nn.Module):
    """Holds a CPU ``torch.Generator`` for losses that draw random numbers (e.g. MGD's masks).

    Its state travels in ``state_dict()`` (``<prefix>_extra_state``), so a run resumed from a
    checkpoint draws exactly what the uninterrupted run drew, independently of torch's global
    generator (the student's own draws are untouched). A deep copy (``EMAHook``) copies the state.

    Args:
        seed (int): the initial seed.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def get_extra_state(self) -> Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    def __deepcopy__(self, memo: dict) -> 'CheckpointedGenerator':
        copied = CheckpointedGenerator(0)
        copied.set_extra_state(self.get_extra_state())
        memo[id(self)] = copied
        return copied

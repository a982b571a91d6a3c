"""Run the student's batch augmentations once, on the student's and the teacher's batch."""
import contextlib
from typing import Iterator, List

import torch
import torch.nn as nn
from torch import Tensor


@contextlib.contextmanager
def shared_batch_augments(preprocessor: nn.Module, teacher_inputs: Tensor) -> Iterator[List]:
    """Inside the context, the ``batch_augments`` of ``preprocessor`` (the student's) transform
    ``teacher_inputs`` exactly as they transform the student's batch, in the same call.

    mmdet's batch augmentations (YOLOX's ``BatchSyncRandomResize``, ``BatchFixedShapeResize``,
    ``BatchResize``) resize or pad the whole normalised batch and draw their size once per call
    (every ``interval`` iterations a new one). The teacher's preprocessor runs in eval mode and
    skips them, so without this the two networks would see batches of different sizes. Each side
    keeps its own normalisation: the augmentation runs once on the two batches stacked along the
    channels (it treats channels alike), and the teacher's part is split off again.

    Args:
        preprocessor (nn.Module): the student's ``DetDataPreprocessor``.
        teacher_inputs (Tensor): the teacher's normalised, padded batch ``(N, C_t, H, W)``.

    Yields:
        list: one element, the teacher's batch; after the student's preprocessor ran inside the
        context, the augmented one.

    Raises:
        ValueError: the two batches differ in batch or spatial size before augmentation (check
        both ``pad_size_divisor``).
    """
    holder = [teacher_inputs]
    augments = getattr(preprocessor, 'batch_augments', None) or []
    for augment in augments:
        augment.forward = _on_both(augment.forward, holder)
    try:
        yield holder
    finally:
        for augment in augments:
            del augment.forward  # back to the class's forward


def _on_both(forward, holder: List[Tensor]):
    def both(inputs: Tensor, data_samples, *args, **kwargs):
        teacher = holder[0]
        if teacher.shape[0] != inputs.shape[0] or teacher.shape[2:] != inputs.shape[2:]:
            raise ValueError(
                f'batch_augments: the teacher batch {tuple(teacher.shape)} and the student batch '
                f'{tuple(inputs.shape)} differ in size before augmentation; give both '
                "data_preprocessors the same pad_size_divisor")
        channels = inputs.shape[1]
        stacked = torch.cat([inputs, teacher.to(inputs.dtype)], dim=1)
        stacked, data_samples = forward(stacked, data_samples, *args, **kwargs)
        holder[0] = stacked[:, channels:]
        return stacked[:, :channels], data_samples
    return both

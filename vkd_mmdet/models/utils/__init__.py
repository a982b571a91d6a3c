from .checkpointed_generator import CheckpointedGenerator
from .dense_head_outputs import HeadAssignment, HeadOutputs
from .feature_standardization import masked_channel_stats, standardize_channels
from .forward_capture import capture_inputs, capture_outputs
from .gt_grid_masks import gt_cell_weights
from .neck_probe import NeckLevel, probe_neck_levels
from .padding_mask import padding_mask
from .shared_batch_augments import shared_batch_augments

__all__ = ['CheckpointedGenerator', 'HeadAssignment', 'HeadOutputs', 'NeckLevel',
           'capture_inputs', 'capture_outputs', 'gt_cell_weights', 'masked_channel_stats',
           'padding_mask', 'probe_neck_levels', 'shared_batch_augments', 'standardize_channels']

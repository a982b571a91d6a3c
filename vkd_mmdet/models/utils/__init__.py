from .checkpointed_generator import CheckpointedGenerator
from .dense_head_outputs import HeadAssignment, HeadOutputs
from .feature_standardization import masked_channel_stats, standardize_channels
from .forward_capture import capture_inputs, capture_outputs
from .mmdet_adapters import bbox_forward, check_roi_head_api, intercept_bbox_loss
from .neck_probe import NeckLevel, probe_neck_levels
from .padding_mask import padding_mask
from .private_api import PrivateAPIError, private_attribute
from .shared_batch_augments import shared_batch_augments

# mmpretrain_adapters is imported by the classifier distiller alone (vkd_mmdet.classification).
__all__ = ['CheckpointedGenerator', 'HeadAssignment', 'HeadOutputs', 'NeckLevel',
           'PrivateAPIError', 'bbox_forward', 'capture_inputs', 'capture_outputs',
           'check_roi_head_api', 'intercept_bbox_loss', 'masked_channel_stats', 'padding_mask',
           'private_attribute', 'probe_neck_levels', 'shared_batch_augments',
           'standardize_channels']

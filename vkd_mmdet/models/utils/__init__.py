from .feature_standardization import masked_channel_stats, standardize_channels
from .neck_probe import NeckLevel, probe_neck_levels
from .padding_mask import padding_mask

__all__ = ['NeckLevel', 'masked_channel_stats', 'padding_mask', 'probe_neck_levels',
           'standardize_channels']

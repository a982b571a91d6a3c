from .feature_standardization import masked_channel_stats, standardize_channels
from .padding_mask import padding_mask

__all__ = ['masked_channel_stats', 'padding_mask', 'standardize_channels']

from .vkd_loss import VkDLoss

__all__ = ['VkDLoss']

from .cwd_loss import CWDLoss
from .diffkd_loss import DiffKDLoss
from .fitnet_loss import FitNetLoss
from .pkd_loss import PKDLoss
from .srd_loss import SRDLoss
from .vkd_loss import VkDLoss

__all__ = ['CWDLoss', 'DiffKDLoss', 'FitNetLoss', 'PKDLoss', 'SRDLoss', 'VkDLoss']

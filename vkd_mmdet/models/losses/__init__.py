from .cwd_loss import CWDLoss
from .diffkd_loss import DiffKDLoss
from .distill_loss import DistillLoss
from .fgd_loss import FGDLoss
from .fitnet_loss import FitNetLoss
from .logit_kd_loss import LogitKDLoss
from .mgd_loss import MGDLoss
from .nd_loss import NDLoss
from .pkd_loss import PKDLoss
from .rtk_loss import RTKLoss
from .srd_loss import SRDLoss
from .vkd_loss import VkDLoss

__all__ = ['CWDLoss', 'DiffKDLoss', 'DistillLoss', 'FGDLoss', 'FitNetLoss', 'LogitKDLoss',
           'MGDLoss', 'NDLoss', 'PKDLoss', 'RTKLoss', 'SRDLoss', 'VkDLoss']

from .crosskd_loss import CrossKDLoss
from .cwd_loss import CWDLoss
from .dense_head_distill_loss import DenseHeadDistillLoss
from .diffkd_loss import DiffKDLoss
from .distill_loss import DistillLoss
from .fgd_loss import FGDLoss
from .fitnet_loss import FitNetLoss
from .ld_loss import LDLoss
from .logit_kd_loss import LogitKDLoss
from .mgd_loss import MGDLoss
from .nd_loss import NDLoss
from .pkd_loss import PKDLoss
from .rtk_loss import RTKLoss
from .srd_loss import SRDLoss
from .vkd_loss import VkDLoss

__all__ = ['CWDLoss', 'CrossKDLoss', 'DenseHeadDistillLoss', 'DiffKDLoss', 'DistillLoss',
           'FGDLoss', 'FitNetLoss', 'LDLoss', 'LogitKDLoss', 'MGDLoss', 'NDLoss', 'PKDLoss',
           'RTKLoss', 'SRDLoss', 'VkDLoss']

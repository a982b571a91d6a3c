"""Logit distillation: KL divergence to the teacher's softened class distribution."""
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LogitKDLoss(BaseModule):
    """Hinton et al.'s knowledge distillation on class logits ("Distilling the Knowledge in a
    Neural Network", 2015), the logit term of VkD, SRD and KD++ on ImageNet.

    ``loss = w * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) )``, summed over classes and
    averaged over samples (``reduction='batchmean'``); ``T^2`` keeps the gradient scale
    independent of the temperature.

    Args:
        temperature (float): ``T``. Defaults to 1.0 (the VkD / SRD / KD++ ImageNet recipes).
        loss_weight (float): ``w``. Defaults to 1.0.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, K)`` logits; teacher: ``(N, K)`` logits (detached).
        - output: scalar.

    Config:
        ``dict(type='LogitKDLoss', temperature=1.0, loss_weight=1.0)``
    """

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'LogitKDLoss: temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f'LogitKDLoss: student logits {tuple(student.shape)} and teacher '
                             f'logits {tuple(teacher.shape)} differ (same classes expected)')
        t = self.temperature
        kl = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                      reduction='batchmean', log_target=True)
        return self.loss_weight * t * t * kl

"""Logit distillation: KL divergence to the teacher's softened class distribution."""
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.logging import MessageHub
from torch import Tensor

from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape


@MODELS.register_module()
class LogitKDLoss(DistillLoss):
    """Hinton et al.'s knowledge distillation on class logits ("Distilling the Knowledge in a
    Neural Network", 2015), the logit term of VkD, SRD and KD++ on ImageNet.

    ``loss = w * T^2 * KL( softmax(z_t / T) || softmax(z_s / T) )``, summed over classes and
    averaged over samples (``reduction='batchmean'``); ``T^2`` keeps the gradient scale
    independent of the temperature. With ``warmup_epochs = E > 0`` the weight is
    ``w * min(1, e / E)`` in training epoch ``e`` (counted from 0, as KD++'s ImageNet code does).

    Args:
        temperature (float): ``T``. Defaults to 1.0 (the VkD / SRD / KD++ ImageNet recipes).
        loss_weight (float): ``w``. Defaults to 1.0.
        warmup_epochs (float): ``E``; 0 for none. Defaults to 0.
        init_cfg (dict, optional): mmengine init config.

    Note:
        The epoch is read from mmengine's current ``MessageHub`` (the Runner records it before
        each training epoch, as mmdet's TOOD head reads it). An ``IterBasedTrainLoop`` stays in
        epoch 0: a warm-up there raises. Outside a Runner (no epoch recorded) the full weight
        applies.

    Shape:
        - student: ``(N, K)`` logits; teacher: ``(N, K)`` logits (detached).
        - output: scalar.

    Config:
        ``dict(type='LogitKDLoss', temperature=1.0, loss_weight=1.0)``
    """

    consumes = 'logits'
    channel_args = {}

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0,
                 warmup_epochs: float = 0., init_cfg=None) -> None:
        super().__init__(loss_weight, init_cfg)
        if temperature <= 0:
            raise ValueError(f'LogitKDLoss: temperature must be > 0, got {temperature}')
        if warmup_epochs < 0:
            raise ValueError(f'LogitKDLoss: warmup_epochs must be >= 0, got {warmup_epochs}')
        self.temperature = temperature
        self.warmup_epochs = warmup_epochs

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        check_same_shape('LogitKDLoss', student, teacher, layout='(N, K)', kind='logits',
                         hint='same classes expected')
        t = self.temperature
        kl = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                      reduction='batchmean', log_target=True)
        return self.loss_weight * self.warmup_factor() * t * t * kl

    def warmup_factor(self) -> float:
        """``min(1, e / E)`` for the current training epoch ``e``; 1 without a warm-up."""
        if not self.warmup_epochs:
            return 1.
        hub = MessageHub.get_current_instance()
        epoch, max_epochs = hub.get_info('epoch'), hub.get_info('max_epochs')
        if epoch is None:
            return 1.
        if max_epochs is not None and self.warmup_epochs >= max_epochs:
            raise ValueError(f'LogitKDLoss: warmup_epochs={self.warmup_epochs} >= the '
                             f'{max_epochs} training epochs: the KD term would never reach its '
                             'weight (an IterBasedTrainLoop counts one epoch; use an '
                             'EpochBasedTrainLoop or warmup_epochs=0)')
        return min(1., epoch / self.warmup_epochs)

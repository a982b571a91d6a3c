import pytest
import torch

from vkd_mmdet.classification import LogitKDLoss, VkDClsLoss


def test_vkd_cls_loss_matches_reference():
    loss = VkDClsLoss(8, 20, loss_weight=1.5)
    s, t = torch.randn(6, 8), torch.randn(6, 20) * 3 + 1
    w = loss.projector.weight.detach()
    # LayerNorm without affine on the teacher only, by hand (biased variance).
    t_norm = (t - t.mean(1, keepdim=True)) / (t.var(1, unbiased=False, keepdim=True)
                                              + 1e-5).sqrt()
    diff = (s @ w.T - t_norm).abs()
    expected = torch.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).mean() * 1.5
    torch.testing.assert_close(loss(s, t), expected)
    assert VkDClsLoss(8, 20, loss_weight=0.0)(s, t) == 0
    with pytest.raises(ValueError, match='pooled'):
        loss(s[:, :, None], t)
    with pytest.raises(ValueError, match='in_channels'):
        loss(s, t[:, :10])


def test_logit_kd_loss_matches_reference():
    s, t = torch.randn(4, 7), torch.randn(4, 7)
    for temperature in (1.0, 4.0):
        p_t = (t / temperature).softmax(1)
        expected = (p_t * (p_t.log() - (s / temperature).log_softmax(1))).sum() / 4
        expected = expected * temperature ** 2 * 0.5
        torch.testing.assert_close(LogitKDLoss(temperature, loss_weight=0.5)(s, t), expected)
    assert LogitKDLoss()(t, t).abs() < 1e-6
    with pytest.raises(ValueError, match=r'^LogitKDLoss: student logits \(4, 7\) and teacher '
                                         r'logits \(4, 3\) .*same classes expected'):
        LogitKDLoss()(s, t[:, :3])
    with pytest.raises(ValueError, match=r'must both be \(N, K\)'):  # softmax over the last dim
        LogitKDLoss()(s[:, :, None], t[:, :, None])
    with pytest.raises(ValueError, match='temperature'):
        LogitKDLoss(0.0)


def test_vkd_cls_projector_stays_orthogonal_under_adamw_decay():
    """The config recipe (AdamW, wd 0.05 with the projector excluded by custom_keys) keeps
    W^T W = I after 200 steps; the decayed group holds no projector parameter."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.loss = VkDClsLoss(8, 24)
    module.fc = torch.nn.Linear(8, 8)
    wrapper = build_optim_wrapper(module, dict(
        optimizer=dict(type='AdamW', lr=5e-3, weight_decay=0.05),
        paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)})))
    for group in wrapper.optimizer.param_groups:
        if any(p is module.loss.projector.raw_weight for p in group['params']):
            assert group['weight_decay'] == 0
    teacher = torch.randn(32, 24)
    start = module.loss.projector.weight.detach().clone()
    for _ in range(200):
        wrapper.update_params(module.loss(module.fc(torch.randn(32, 8)), teacher))
    w = module.loss.projector.weight.detach()
    assert (w.T @ w - torch.eye(8)).abs().max() < 1e-4
    assert (w - start).abs().max() > 1e-2  # it did train


def test_logit_kd_warmup_follows_the_runner_epoch(tmp_path):
    """warmup_epochs=2 under a real 3-epoch Runner: weights 0, 1/2, 1 (KD++'s min(1, e / E)),
    read from the epoch the Runner records; outside a Runner the full weight; a loop shorter
    than the warm-up (IterBasedTrainLoop: one epoch) raises."""
    from mmengine.logging import MessageHub
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    s, t = torch.randn(3, 5), torch.randn(3, 5)
    full = LogitKDLoss(loss_weight=2.0)(s, t)

    class Probe(BaseModel):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(5))
            self.kd = LogitKDLoss(loss_weight=2.0, warmup_epochs=2)
            self.seen = []

        def forward(self, inputs, data_samples=None, mode='loss'):
            loss = self.kd(s + self.bias, t)
            self.seen.append(loss.item())
            return dict(loss=loss)

    model = Probe()
    runner = Runner(model=model, work_dir=str(tmp_path), experiment_name=f'kd_warmup_{id(model)}',
                    train_dataloader=dict(dataset=[dict(inputs=torch.zeros(1))] * 2,
                                          sampler=dict(type='DefaultSampler', shuffle=False),
                                          batch_size=1, collate_fn=dict(type='default_collate')),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
                    train_cfg=dict(by_epoch=True, max_epochs=3), default_scope='mmengine')
    runner.train()
    expected = [0., 0., 0.5, 0.5, 1., 1.]
    torch.testing.assert_close(torch.tensor(model.seen), full.item() * torch.tensor(expected))

    MessageHub.get_instance(f'no_runner_{id(model)}')  # current hub, no epoch recorded
    torch.testing.assert_close(model.kd(s, t), full)
    iter_based = MessageHub.get_instance(f'iter_based_{id(model)}')
    iter_based.update_info('epoch', 0)
    iter_based.update_info('max_epochs', 1)
    with pytest.raises(ValueError, match='warmup_epochs=2 >= the 1 training epochs'):
        model.kd(s, t)
    MessageHub.get_instance(f'after_{id(model)}')  # leave a neutral current hub to later tests
    with pytest.raises(ValueError, match='warmup_epochs'):
        LogitKDLoss(warmup_epochs=-1)

# GFL pair: VkD ablation: a free bias-free 1x1 conv adapter (32 -> 64) instead of the orthogonal
# projector, normalisation and smooth-L1 kept; weight, levels and optimizer treatment (no decay on
# the map) as in the VkD GFL config, so only the orthogonality constraint changes.
_base_ = ['./vkd_gfl_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(vkd=dict(projector=dict(type='LinearAdapter', bias=False))))
# The free map keeps VkD's no-decay treatment (the optimizer constructor exempts orthogonal
# projectors only), so only the orthogonality constraint changes.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.weight': dict(decay_mult=0.0)}))

# CPU demo VkD ablation: a free bias-free 1x1 conv adapter (32 -> 64) instead of the orthogonal
# projector, normalisation and smooth-L1 kept; weight, levels and optimizer treatment (no decay on
# the map) as in the VkD demo config, so only the orthogonality constraint changes.
_base_ = ['./vkd_fcos_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(vkd=dict(orthogonal=False)))
# The adapter keeps VkD's no-decay treatment (the key of the orthogonal projector,
# 'projector.raw_weight', does not match it), so only the orthogonality constraint changes.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'adapter.weight': dict(decay_mult=0.0)}))

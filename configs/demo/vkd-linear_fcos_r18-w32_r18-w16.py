# CPU demo VkD ablation: a free bias-free 1x1 projector (32 -> 64) instead of the orthogonal one,
# normalisation and smooth-L1 kept; weight, levels and optimizer treatment (no projector decay)
# as in the VkD demo config, so only the orthogonality constraint changes.
_base_ = ['./vkd_fcos_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(vkd=dict(projector='linear')))
# The free projector keeps VkD's no-decay treatment (the key of the orthogonal projector,
# 'projector.raw_weight', no longer matches it), so only the orthogonality constraint changes.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.weight': dict(decay_mult=0.0)}))

# GFL pair: VkD ablation with both components removed: a free bias-free 1x1 conv adapter and no
# standardisation, i.e. plain feature matching through an adapter under VkD's smooth-L1 and weight.
_base_ = ['./vkd_gfl_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(
    vkd=dict(projector=dict(type='LinearAdapter', bias=False), normalize=False)))
# The free map keeps VkD's no-decay treatment, as in vkd-linear_gfl_r18-w32_r18-w16.py.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.weight': dict(decay_mult=0.0)}))

# GFL pair: VkD ablation: the orthogonal projector without the per-channel standardisation (the
# raw projected student against the raw teacher feature); everything else as in the VkD GFL config.
_base_ = ['./vkd_gfl_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(vkd=dict(normalize=False)))

# GFL pair: VkD with the Householder map for the orthogonal projector (the paper: matrix
# exponential).
_base_ = ['./vkd_gfl_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(
    vkd=dict(projector=dict(type='OrthogonalProjector', orthogonal_map='householder'))))

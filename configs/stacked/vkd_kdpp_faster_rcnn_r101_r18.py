# Methods stacked in one distiller: VkD on the five FPN levels (loss_vkd_p2 ... loss_vkd_p6) +
# KD++ on the sampled RoIs (loss_nd, loss_kd). Weights as in each method's own config.
_base_ = ['../kdpp/kdpp_faster_rcnn_r101_r18.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=4.0)))

# CPU demo two-stage distillation: the demo Faster R-CNN student under its frozen teacher, VkD on
# P2-P4 (one orthogonal projector per level, 32 -> 64), weight 4.0 as in the FCOS demo (the
# authors' detection weight).
# - student: ./student_faster-rcnn_r18-w16.py (data, schedule, seed and runtime, inherited).
# - teacher: ./teacher_faster-rcnn_r18-w32.py, weights written by tools/bench_methods.py.
_base_ = ['../_base_/distillers/demo_faster-rcnn_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))

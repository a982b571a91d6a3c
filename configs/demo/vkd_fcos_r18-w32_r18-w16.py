# CPU demo distillation: the demo student under the frozen demo teacher, VkD on P3-P5.
# - student: ./student_fcos_r18-w16.py (its data, schedule, seed and runtime, inherited).
# - teacher: ./teacher_fcos_r18-w32.py, weights written by tools/run_demo.py (`make demo`).
# - VkD: one orthogonal projector per level (32 -> 64 channels), weight 4.0 (the authors'
#   detection weight; on this demo, over 3 seeds, weight 1.0 gave +0.4 +- 0.5 AP over the
#   student alone, 4.0 gives +2.3 +- 0.9: docs/accuracy.md).
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))

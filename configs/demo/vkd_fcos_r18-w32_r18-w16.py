# CPU demo distillation: the demo student under the frozen demo teacher, VkD on P3-P5.
# - student: ./student_fcos_r18-w16.py (its data, schedule, seed and runtime, inherited).
# - teacher: ./teacher_fcos_r18-w32.py, weights written by tools/run_demo.py (`make demo`).
# - VkD: one orthogonal projector per level (32 -> 64 channels), weight 4.0 (the authors'
#   detection weight; on this demo, over 3 seeds, weight 1.0 gave +0.4 +- 0.5 AP over the
#   student alone, 4.0 gives +2.3 +- 0.9: docs/accuracy.md).
_base_ = ['./student_fcos_r18-w16.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
custom_hooks = [dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'work_dirs/demo/teacher/teacher.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='{{ fileDirname }}/teacher_fcos_r18-w32.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict(
        vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))

# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
# The key matches OrthogonalProjector's `raw_weight` alone: free adapters (SRD's linear map,
# ND's BN + Linear) and the student keep the optimizer's decay.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))

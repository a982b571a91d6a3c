# CPU demo two-stage distillation: the demo Faster R-CNN student under its frozen teacher, VkD on
# P2-P4 (one orthogonal projector per level, 32 -> 64), weight 4.0 as in the FCOS demo (the
# authors' detection weight).
# - student: ./student_faster-rcnn_r18-w16.py (data, schedule, seed and runtime, inherited).
# - teacher: ./teacher_faster-rcnn_r18-w32.py, weights written by tools/bench_methods.py.
_base_ = ['./student_faster-rcnn_r18-w16.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
custom_hooks = [dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'work_dirs/bench_methods/teacher_faster-rcnn/teacher.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='{{ fileDirname }}/teacher_faster-rcnn_r18-w32.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict(
        vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))

# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
# The key matches OrthogonalProjector's `raw_weight` alone: free adapters (SRD's linear map,
# ND's BN + Linear) and the student keep the optimizer's decay.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))

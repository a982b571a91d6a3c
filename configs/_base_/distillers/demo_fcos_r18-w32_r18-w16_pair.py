# CPU demo pair: the demo FCOS student (configs/demo/student_fcos_r18-w16.py: its data, schedule,
# seed and runtime) under the frozen demo teacher (configs/demo/teacher_fcos_r18-w32.py, weights
# written by tools/run_demo.py, `make demo`). The method configs add `distill_losses`.
_base_ = ['../../demo/student_fcos_r18-w16.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)

teacher_ckpt = 'work_dirs/demo/teacher/teacher.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='{{ fileDirname }}/../../demo/teacher_fcos_r18-w32.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')

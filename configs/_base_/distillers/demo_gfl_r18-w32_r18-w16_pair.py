# CPU demo head-distillation pair: the demo GFL student under its frozen teacher (weights written
# by tools/bench_methods.py). The method configs add `distill_losses`.
_base_ = ['../../demo/student_gfl_r18-w16.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)

teacher_ckpt = 'work_dirs/bench_methods/teacher_gfl/teacher.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='{{ fileDirname }}/../../demo/teacher_gfl_r18-w32.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')

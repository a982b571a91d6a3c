from .distill_grad_norm_hook import DistillGradNormHook
from .export_student_hook import ExportStudentHook
from .projector_decay_check_hook import ProjectorDecayCheckHook
from .rng_state_hook import RNGStateHook

__all__ = ['DistillGradNormHook', 'ExportStudentHook', 'ProjectorDecayCheckHook', 'RNGStateHook']

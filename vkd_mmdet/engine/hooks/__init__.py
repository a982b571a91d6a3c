from .export_student_hook import ExportStudentHook
from .projector_decay_check_hook import ProjectorDecayCheckHook
from .rng_state_hook import RNGStateHook

__all__ = ['ExportStudentHook', 'ProjectorDecayCheckHook', 'RNGStateHook']

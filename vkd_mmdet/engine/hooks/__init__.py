from .export_student_hook import ExportStudentHook
from .rng_state_hook import RNGStateHook

__all__ = ['ExportStudentHook', 'RNGStateHook']

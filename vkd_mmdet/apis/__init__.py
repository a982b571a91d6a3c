"""High-level functions behind the tools (importable; the tools stay thin)."""
from .export_student import export_student, student_checkpoint, student_config

__all__ = ['export_student', 'student_checkpoint', 'student_config']

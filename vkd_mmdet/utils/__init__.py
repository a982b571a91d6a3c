"""Config set-up shared by the tools (train / test)."""
from .runner_setup import (
                           enable_amp,
                           enable_auto_scale_lr,
                           enable_visualization,
                           find_resumable_checkpoint,
                           is_complete_checkpoint,
                           set_work_dir,
                           setup_launcher,
                           setup_resume,
)

__all__ = [
    'enable_amp', 'enable_auto_scale_lr', 'enable_visualization', 'find_resumable_checkpoint',
    'is_complete_checkpoint', 'set_work_dir', 'setup_launcher', 'setup_resume'
]

"""Config set-up shared by the tools (train / test)."""
from .runner_setup import (
    add_common_args,
    enable_amp,
    enable_auto_scale_lr,
    enable_visualization,
    find_resumable_checkpoint,
    is_complete_checkpoint,
    parse_common_args,
    set_work_dir,
    setup_launcher,
    setup_resume,
)

__all__ = [
    'add_common_args', 'enable_amp', 'enable_auto_scale_lr', 'enable_visualization',
    'find_resumable_checkpoint', 'is_complete_checkpoint', 'parse_common_args', 'set_work_dir',
    'setup_launcher', 'setup_resume'
]

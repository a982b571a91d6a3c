"""Utilities below the models: safe checkpoint loading, config set-up shared by the tools."""
from .checkpoint import (
    UnsafeCheckpointError,
    load_teacher_checkpoint,
    safe_load,
    trusted_checkpoints,
)
from .model_cfg import build_model, load_model_cfg, resolve_model_cfg
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
    'UnsafeCheckpointError', 'load_teacher_checkpoint', 'safe_load', 'trusted_checkpoints',
    'build_model', 'load_model_cfg', 'resolve_model_cfg',
    'add_common_args', 'enable_amp', 'enable_auto_scale_lr', 'enable_visualization',
    'find_resumable_checkpoint', 'is_complete_checkpoint', 'parse_common_args', 'set_work_dir',
    'setup_launcher', 'setup_resume'
]

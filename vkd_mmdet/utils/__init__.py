"""Utilities below the models: safe checkpoint loading (and the one point that installs it into
mmengine), refusing another model's checkpoint, config set-up shared by the tools, the random
generators' states."""
from .checkpoint import UnsafeCheckpointError, safe_load, trusted_checkpoints
from .checkpoint_mismatch import CheckpointMismatchError, refuse_mismatched_state_dict
from .common_args import add_common_args, parse_common_args
from .config_edits import (
    enable_amp,
    enable_auto_scale_lr,
    enable_visualization,
    set_work_dir,
    setup_launcher,
    setup_resume,
)
from .configs_dir import configs_dir, tools_dir
from .model_cfg import build_model, load_model_cfg, resolve_model_cfg
from .resumable_checkpoint import find_resumable_checkpoint, is_complete_checkpoint
from .rng_states import get_rng_states, set_rng_states
from .safe_loading import install_safe_loading
from .teacher_checkpoint import load_teacher_checkpoint

__all__ = [
    'CheckpointMismatchError', 'UnsafeCheckpointError', 'install_safe_loading',
    'load_teacher_checkpoint', 'refuse_mismatched_state_dict', 'safe_load', 'trusted_checkpoints',
    'build_model', 'load_model_cfg', 'resolve_model_cfg',
    'add_common_args', 'configs_dir', 'enable_amp', 'enable_auto_scale_lr', 'enable_visualization',
    'find_resumable_checkpoint', 'is_complete_checkpoint', 'parse_common_args', 'set_work_dir',
    'setup_launcher', 'setup_resume', 'get_rng_states', 'set_rng_states', 'tools_dir'
]

from .trusted_checkpoint import install_trusted_runner_checkpoints, trusted_checkpoints

install_trusted_runner_checkpoints()

from .hooks import *  # noqa: E402,F403
from .optim_wrappers import *  # noqa: E402,F403

__all__ = ['install_trusted_runner_checkpoints', 'trusted_checkpoints']

from .trusted_checkpoint import install_trusted_runner_checkpoints, trusted_checkpoints

install_trusted_runner_checkpoints()

__all__ = ['install_trusted_runner_checkpoints', 'trusted_checkpoints']

"""vkd_mmdet: VkD and peer knowledge-distillation methods as an MMDetection 3.x / mmpretrain plugin.

Importing the package registers every module into mmdet's (and mmpretrain's) registries, so a
config only needs ``custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)``.
"""
from .engine import *  # noqa: F403
from .models import *  # noqa: F403
from .version import __version__

__all__ = ['__version__']

"""vkd_mmdet: VkD and peer knowledge-distillation methods as an MMDetection 3.x / mmpretrain plugin.

Importing the package registers the detection modules into mmdet's registries, so a config only
needs ``custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)``. It never
imports mmpretrain: the classification modules register with ``vkd_mmdet.classification``.
It also routes every checkpoint mmengine loads through the safe loader
(:mod:`vkd_mmdet.utils.checkpoint`).
"""
from .utils.checkpoint import install_safe_checkpoint_loading
from .utils.checkpoint_mismatch import install_named_checkpoint_errors

install_safe_checkpoint_loading()
# A distiller's mismatch error from resume / load_from names the checkpoint file.
install_named_checkpoint_errors()

# The classes, from the leaf packages' ``__all__``: ``vkd_mmdet.models`` has none, so a star
# import of it would bind its sub-packages here too, ``models.utils`` over ``vkd_mmdet.utils``.
from .engine.hooks import *  # noqa: E402,F403
from .engine.optim_wrappers import *  # noqa: E402,F403
from .models.distillers import *  # noqa: E402,F403
from .models.losses import *  # noqa: E402,F403
from .models.projectors import *  # noqa: E402,F403
from .version import __version__  # noqa: E402

__all__ = ['__version__']

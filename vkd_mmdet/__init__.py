"""vkd_mmdet: VkD and peer knowledge-distillation methods as an MMDetection 3.x / mmpretrain plugin.

Importing the package registers the detection modules into mmdet's registries, so a config only
needs ``custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)``. It never
imports mmpretrain: the classification modules register with ``vkd_mmdet.classification``.

Importing changes nothing in mmengine. The safe checkpoint loading is installed at one documented
point, :func:`install_safe_loading` (:mod:`vkd_mmdet.utils.safe_loading`): building a distiller
calls it, so do the tools; ``VKD_SAFE_LOADING=0`` switches it off.
"""
# The classes, from the leaf packages' ``__all__``: ``vkd_mmdet.models`` has none, so a star
# import of it would bind its sub-packages here too, ``models.utils`` over ``vkd_mmdet.utils``.
from .engine.hooks import *  # noqa: F403
from .engine.optim_wrappers import *  # noqa: F403
from .models.distillers import *  # noqa: F403
from .models.losses import *  # noqa: F403
from .models.projectors import *  # noqa: F403
from .utils.safe_loading import install_safe_loading
from .version import __version__

__all__ = ['__version__', 'install_safe_loading']

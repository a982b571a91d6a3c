"""mmpretrain backbones: registered by ``vkd_mmdet.classification``, not by ``import vkd_mmdet``."""

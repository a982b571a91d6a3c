"""Where the installed package keeps its configs and tools, for projects that inherit them."""
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _mim_dir(name: str) -> str:
    """``vkd_mmdet/.mim/<name>`` of an installed package (a copy in a wheel install, a symlink in
    an editable one), else ``<name>/`` of the source checkout this package runs from."""
    for path in (osp.join(PACKAGE_DIR, '.mim', name), osp.join(PACKAGE_DIR, '..', name)):
        if osp.isdir(path):
            return osp.normpath(path)
    raise FileNotFoundError(f'vkd_mmdet at {PACKAGE_DIR} has no .mim/{name} (reinstall it with '
                            f'pip) and is not in a source checkout with {name}/')


def configs_dir() -> str:
    """``vkd_mmdet/.mim/configs`` of an installed package (a copy in a wheel install, a symlink in
    an editable one), else ``configs/`` of the source checkout this package runs from.

    An mmengine config outside this repo inherits ours with this directory in the environment
    variable ``VKD_MMDET_CONFIGS`` (mmengine 0.10 substitutes ``{{$VAR:default}}`` before it
    reads ``_base_``; README, "Inherit our configs")::

        _base_ = ['{{$VKD_MMDET_CONFIGS:}}/vkd/faster_rcnn_r101_r18.py']
    """
    return _mim_dir('configs')


def tools_dir() -> str:
    """``tools/`` beside :func:`configs_dir`: the scripts the benchmarks run as a user would."""
    return _mim_dir('tools')

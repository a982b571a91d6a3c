"""The config edits behind the flags of ``tools/train.py`` and ``tools/test.py`` (mmdet's flags,
any scope).

The tools stay thin and generic: the model type, default scope and registries come from the
config (``default_scope='mmdet'`` or ``'mmpretrain'``), never from the tool.
"""
import os.path as osp
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .resumable_checkpoint import find_resumable_checkpoint

#: How the config's visualisation hook is switched on, per default scope.
_SHOW_KEYS = {
    # mmdet's DetVisualizationHook (what mmdet's trigger_visualization_hook sets)
    'mmdet': dict(enable='draw', out_dir='test_out_dir'),
    # mmpretrain's VisualizationHook (what mmpretrain's tools/test.py sets)
    'mmpretrain': dict(enable='enable', out_dir='out_dir'),
}


def enable_amp(cfg: Config) -> None:
    """``--amp``: mixed precision for the student and the teacher forward passes.

    With CUDA: mmengine's ``AmpOptimWrapper`` (float16 autocast, dynamic loss scaling), as
    mmdet's ``tools/train.py`` does. Without CUDA (where ``AmpOptimWrapper`` refuses to start):
    :class:`~vkd_mmdet.engine.CPUAmpOptimWrapper`, bfloat16 autocast. Distillers compute their
    distillation losses in float32 either way and run their teacher at ``teacher_precision``
    (``'fp32'`` turns autocast off for it): a distiller config that states none gets the
    autocast dtype, ``'fp16'`` / ``'bf16'``.
    """
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
    model = cfg.get('model')
    if isinstance(model, dict) and 'teacher' in model:
        model.setdefault('teacher_precision', 'fp16' if torch.cuda.is_available() else 'bf16')


def enable_auto_scale_lr(cfg: Config) -> None:
    """``--auto-scale-lr``: mmdet's check, then mmengine scales the LR by the real batch size."""
    auto_scale_lr = cfg.get('auto_scale_lr', None)
    if not auto_scale_lr or 'base_batch_size' not in auto_scale_lr:
        raise RuntimeError('--auto-scale-lr: the config needs '
                           '`auto_scale_lr = dict(enable=False, base_batch_size=16)` '
                           '(the total batch size its learning rate was tuned for)')
    cfg.auto_scale_lr.enable = True


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on a machine without CUDA, make ``--launcher pytorch`` work.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its ``MMDistributedDataParallel``
    gets ``device_ids=[LOCAL_RANK]``; both fail without a GPU. Without CUDA the process group is
    initialised here with the gloo backend (the Runner then skips its own ``init_dist``) and the
    model wrapper gets ``device_ids=None`` (DDP over CPU modules).
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher}: without CUDA only `--launcher pytorch` '
                           '(torchrun, gloo backend) is supported')
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'gloo')
    if backend != 'gloo':
        print_log(f'env_cfg.dist_cfg.backend={backend!r} needs CUDA; using gloo on the CPU',
                  logger='current')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper_cfg = cfg.get('model_wrapper_cfg', None) or ConfigDict(
        type='MMDistributedDataParallel')
    wrapper_cfg.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper_cfg


def enable_preemption(cfg: Config) -> None:
    """Handle the scheduler's SIGTERM / SIGUSR1 (save, then exit for a requeue): add
    ``PreemptionHook`` to ``custom_hooks`` unless the config lists it (with its own arguments)."""
    _add_hook(cfg, 'PreemptionHook')


def enable_startup_report(cfg: Config) -> None:
    """Report the distillation set-up at the first iteration: add ``StartupReportHook`` to a
    distiller config's ``custom_hooks`` unless it lists it (a plain model's run is unchanged)."""
    model = cfg.get('model')
    if isinstance(model, dict) and 'teacher' in model:
        _add_hook(cfg, 'StartupReportHook')


def _add_hook(cfg: Config, hook_type: str) -> None:
    hooks = cfg.get('custom_hooks', None) or []
    if not any(isinstance(hook, dict) and hook.get('type') == hook_type for hook in hooks):
        cfg.custom_hooks = list(hooks) + [dict(type=hook_type)]


def setup_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (``'auto'``: the newest complete checkpoint of the work dir) or a path."""
    if resume is None:
        return
    if resume != 'auto':
        cfg.resume, cfg.load_from = True, resume
        return
    checkpoint = find_resumable_checkpoint(cfg.work_dir)
    if checkpoint is None:
        print_log(f'--resume: no complete checkpoint in {cfg.work_dir}; training from scratch',
                  logger='current')
        cfg.resume, cfg.load_from = False, None
    else:
        cfg.resume, cfg.load_from = True, checkpoint


def enable_visualization(cfg: Config, show: bool, show_dir: Optional[str],
                         wait_time: float) -> None:
    """``--show`` / ``--show-dir``: switch on the config's visualisation hook (mmdet or
    mmpretrain)."""
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError("--show / --show-dir: the config has no default_hooks.visualization; "
                           "add `visualization=dict(type='DetVisualizationHook')` "
                           "(mmpretrain: 'VisualizationHook') to default_hooks")
    keys = _SHOW_KEYS.get(cfg.get('default_scope', 'mmdet'), _SHOW_KEYS['mmdet'])
    hook = hooks.visualization
    hook[keys['enable']] = True
    if show:
        hook.update(show=True, wait_time=wait_time)
    if show_dir:
        hook[keys['out_dir']] = show_dir


def set_work_dir(cfg: Config, work_dir: Optional[str], config_path: str) -> None:
    """mmdet's rule: ``--work-dir`` > the config's ``work_dir`` > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])

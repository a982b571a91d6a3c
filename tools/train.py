"""Train a distiller (or any mmdet / mmpretrain model): mmdet's ``tools/train.py`` flags.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

The default scope (mmdet, mmpretrain) comes from the config. ``--resume`` with no path resumes
from the newest *complete* checkpoint of the work dir (a half-written one, left by a killed job,
is skipped). ``--amp``: float16 ``AmpOptimWrapper`` with CUDA, bfloat16 autocast on the CPU.
Distributed: ``tools/dist_train.sh`` (torchrun), ``tools/slurm_train.sh``; without CUDA
``--launcher pytorch`` runs on gloo.
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from vkd_mmdet.utils import (
    add_common_args,
    enable_amp,
    enable_auto_scale_lr,
    install_safe_loading,
    parse_common_args,
    set_work_dir,
    setup_launcher,
    setup_resume,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector (or distiller)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='If specify checkpoint path, resume from it, while if not specify, try to auto '
        'resume from the latest complete checkpoint in the work directory.')
    add_common_args(parser)
    args = parse_common_args(parser, argv)
    return args


def main(argv: Optional[Sequence[str]] = None) -> Runner:
    args = parse_args(argv)
    install_safe_loading()  # vkd_mmdet's checkpoint loaders, before anything loads
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    setup_resume(cfg, args.resume)
    setup_launcher(cfg, args.launcher)

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()

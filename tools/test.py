"""Test (and evaluate) a distiller's student, or its teacher alone: mmdet's ``tools/test.py``.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RESULT.pkl] [--show]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]
    python tools/test.py CONFIG [TEACHER_CHECKPOINT] --teacher

Normal evaluation runs the student only (the distiller's predict mode never runs the teacher).
``--teacher`` evaluates the teacher alone (check a teacher checkpoint before a long run): the
model becomes ``model.teacher`` of the distiller config, loaded from ``TEACHER_CHECKPOINT`` or,
when omitted, from ``model.teacher_ckpt``, with the distiller's safe loader
(``model.teacher_ckpt_trusted`` / ``teacher_ckpt_strict`` apply).
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.evaluator import DumpResults
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from vkd_mmdet.utils import (
    add_common_args,
    enable_visualization,
    install_safe_loading,
    load_teacher_checkpoint,
    parse_common_args,
    resolve_model_cfg,
    set_work_dir,
    setup_launcher,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint file (with --teacher: the teacher checkpoint, default '
        'model.teacher_ckpt)')
    parser.add_argument(
        '--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, it will be '
        'automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--teacher', action='store_true',
        help="evaluate the distiller's teacher alone (from CHECKPOINT or model.teacher_ckpt)")
    add_common_args(parser)
    args = parse_common_args(parser, argv)
    if args.checkpoint is None and not args.teacher:
        parser.error('the following arguments are required: checkpoint')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out: the dump file must be a .pkl file')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the test; returns the metrics."""
    args = parse_args(argv)
    install_safe_loading()  # vkd_mmdet's checkpoint loaders, before anything loads
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    set_work_dir(cfg, args.work_dir, args.config)
    distiller = cfg.model
    if args.teacher:
        if 'teacher' not in distiller:
            raise ValueError('--teacher: the config `model` has no `teacher` (not a distiller)')
        cfg.model = resolve_model_cfg(distiller.teacher, 'model.teacher')
        cfg.load_from = None  # loaded below with the distiller's (safe) teacher loader
    else:
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    setup_launcher(cfg, args.launcher)

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.teacher:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        load_teacher_checkpoint(model, args.checkpoint or distiller.get('teacher_ckpt'),
                                distiller.get('teacher_ckpt_strict', True),
                                distiller.get('teacher_ckpt_trusted', False))
    if args.out is not None:
        runner.test_evaluator.metrics.append(_dump_metric(cfg, args.out))
    return runner.test()


def _dump_metric(cfg: Config, out: str):
    if cfg.get('default_scope', 'mmdet') == 'mmdet':
        from mmdet.evaluation import DumpDetResults  # encodes masks as mmdet's test.py does
        return DumpDetResults(out_file_path=out)
    return DumpResults(out_file_path=out)


if __name__ == '__main__':
    main()

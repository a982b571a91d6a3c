"""Export a distiller checkpoint's student as a plain mmdet model (config + checkpoint).

    python tools/export_student.py CONFIG CHECKPOINT OUT_DIR

Writes ``OUT_DIR/<config name>_student.py`` and ``OUT_DIR/<checkpoint name>_student.pth``;
``mmdet.apis.init_detector`` loads both without vkd_mmdet. Training writes the same export to
``<work_dir>/student`` when the config has ``custom_hooks = [dict(type='ExportStudentHook')]``.
CHECKPOINT is unpickled fully (as ``--resume`` does): pass only checkpoints you trust.
"""
import argparse
from typing import Optional, Sequence, Tuple

from mmengine.config import Config, DictAction

from vkd_mmdet.apis import export_student


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Export a distiller's student")
    parser.add_argument('config', help='the distiller config file')
    parser.add_argument('checkpoint', help='a checkpoint written by the distiller run')
    parser.add_argument('out_dir', help='folder for the student config and checkpoint')
    parser.add_argument('--name', help='config file name (default: <config name>_student)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config (xxx=yyy), as in tools/train.py')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Tuple[str, str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg_path, ckpt_path = export_student(cfg, args.checkpoint, args.out_dir, args.name)
    print(f'student config: {cfg_path}\nstudent checkpoint: {ckpt_path}')
    return cfg_path, ckpt_path


if __name__ == '__main__':
    main()

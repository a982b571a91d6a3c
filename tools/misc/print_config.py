"""Print a config as mmengine reads it; ``--resolve`` expands a distiller's student and teacher.

    python tools/misc/print_config.py CONFIG [--resolve] [--cfg-options k=v ...]

mmdet's ``tools/misc/print_config.py`` shows ``student=dict(cfg_path='mmdet::...', **overrides)``
as written; ``--resolve`` replaces each by the model it builds (the packaged config's ``model``
with the overrides merged), so the printed student and teacher are the ones that train.
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from vkd_mmdet.utils import resolve_model_cfg


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--resolve', action='store_true',
                        help="expand model.student / model.teacher given by cfg_path")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.resolve:
        for key in ('student', 'teacher'):
            if key in cfg.get('model', {}):
                cfg.model[key] = resolve_model_cfg(cfg.model[key], f'model.{key}')
    text = f'Config:\n{cfg.pretty_text}'
    print(text)
    return text


if __name__ == '__main__':
    main()

"""mmdet's flags that ``tools/train.py`` and ``tools/test.py`` share (``--cfg-options``,
``--launcher``, ``--local_rank``)."""
import argparse
import os
from typing import Optional, Sequence

from mmengine.config import DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """mmdet's ``--cfg-options``, ``--launcher`` and ``--local_rank`` (train and test alike)."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair in xxx=yyy format '
        'will be merged into config file. If the value to be overwritten is a list, it should '
        'be like key="[a,b]" or key=a,b It also allows nested list/tuple values, e.g. '
        'key="[(a,b),(c,d)]" Note that the quotation marks are necessary and that no white '
        'space is allowed.')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    # torchrun sets LOCAL_RANK; the legacy torch.distributed.launch passed --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_common_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse, and export ``--local_rank`` as ``LOCAL_RANK`` when no launcher set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args

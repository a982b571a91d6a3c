"""Which checkpoint ``--resume`` can load: the newest one a killed job wrote completely."""
import glob
import os
import os.path as osp
import zipfile
from typing import Optional

from mmengine.logging import print_log


def is_complete_checkpoint(path: Optional[str]) -> bool:
    """Whether ``path`` is a fully written checkpoint.

    ``torch.save`` writes a zip archive whose central directory comes last: a file cut short by a
    killed job has none (``zipfile.is_zipfile`` reads only that record, not the tensors).
    """
    return bool(path) and osp.isfile(path) and zipfile.is_zipfile(path)


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of ``work_dir`` (what ``--resume`` with no path loads).

    mmengine's ``find_latest_checkpoint`` trusts the ``last_checkpoint`` file blindly; after a
    SIGKILL it may name a half-written checkpoint (or be empty). Here it is checked, and the newest
    complete ``*.pth`` of ``work_dir`` is the fallback. None when there is none.
    """
    candidates = []
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            candidates.append(f.read().strip())
    candidates += sorted(glob.glob(osp.join(work_dir, '*.pth')), key=os.path.getmtime,
                         reverse=True)
    for path in candidates:
        if is_complete_checkpoint(path):
            return path
        if path:
            print_log(f'--resume: skipping incomplete checkpoint {path}', logger='current')
    return None

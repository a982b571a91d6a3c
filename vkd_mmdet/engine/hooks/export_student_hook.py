"""Export the student as a plain model when training ends, so nobody converts by hand."""
import os.path as osp
from typing import List, Optional

from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from ...apis import export_student
from ...compat.mmengine import checkpoint_hook_files


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """After training, export the student of the final checkpoint (and of the best ones).

    For each checkpoint the run's ``CheckpointHook`` kept as last and (with ``save_best``) best,
    :func:`vkd_mmdet.apis.export_student` writes ``<checkpoint name>_student.pth`` (student
    weights, mmdet's key names, safe-loadable) and one ``<config name>_student.py`` (a plain
    config of the student) to ``out_dir``: ``mmdet.apis.init_detector`` loads them without
    ``vkd_mmdet``. Runs on the main process only.

    Registered in mmengine's root ``HOOKS``, so it builds under any default scope (mmdet,
    mmpretrain).

    Args:
        out_dir (str, optional): output folder. Defaults to ``<work_dir>/student``.

    Config:
        .. code-block:: python

            custom_hooks = [dict(type='ExportStudentHook')]
    """

    priority = 'VERY_LOW'  # after CheckpointHook has written and published its checkpoints

    def __init__(self, out_dir: Optional[str] = None) -> None:
        self.out_dir = out_dir

    @staticmethod
    def checkpoints(runner) -> List[str]:
        """The last and best checkpoints the run's ``CheckpointHook`` wrote (existing files)."""
        paths = [path for hook in runner.hooks if isinstance(hook, CheckpointHook)
                 for path in checkpoint_hook_files(hook)]
        found: List[str] = []
        for path in paths:
            if path and osp.isfile(path) and path not in found:
                found.append(str(path))
        return found

    @master_only
    def after_train(self, runner) -> None:
        out_dir = self.out_dir or osp.join(runner.work_dir, 'student')
        checkpoints = self.checkpoints(runner)
        if not checkpoints:
            runner.logger.warning('ExportStudentHook: no checkpoint was written (is there a '
                                  'CheckpointHook in default_hooks?); nothing exported')
        for checkpoint in checkpoints:
            cfg_path, ckpt_path = export_student(runner.cfg, checkpoint, out_dir)
            runner.logger.info(f'ExportStudentHook: student of {checkpoint} exported to '
                               f'{ckpt_path} (config: {cfg_path})')

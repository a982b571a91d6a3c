"""Say at the first iteration whether a distillation set-up is sane: the teacher loaded, and each
term of a size that can teach without drowning the student's own losses."""
import json
import math
import os.path as osp
from typing import Dict, List, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...models.distillers.base_distiller import BaseDistiller
from .distill_grad_norm_hook import measure_loss_parts

#: The report's file name in the work dir.
REPORT_FILE = 'startup_report.json'


@HOOKS.register_module()
class StartupReportHook(Hook):
    """Before the first training iteration, measure the distillation set-up on its batch, log it
    and write ``<work_dir>/startup_report.json`` (with a one-line ``summary``).

    The report holds:

    - the teacher checkpoint: its file, the number of the teacher's keys it loaded, the missing
      and unexpected keys (non-empty only with ``teacher_ckpt_strict=False``: a strict mismatch is
      an error at build time);
    - the sum of the student's task losses, and each distillation term's value (at its configured
      ``loss_weight``; a schedule's current factor is listed beside) and its ratio to that sum;
    - the L2 norm of the gradient each part sends into the student's ``modules`` (what
      :class:`DistillGradNormHook` measures, with the same function) and its ratio to the task's;
    - warnings: a term more than ``high`` times or less than ``low`` times the task loss (naming
      the config key of its weight), teacher keys left unloaded, a non-finite value.

    The measurement is one extra forward and one backward per part on the first batch; the
    training is unchanged (buffers, random generators and gradients restored: tested for
    :class:`DistillGradNormHook`). A resumed run reports at its first iteration too.
    ``tools/train.py`` adds this hook to every distiller run unless the config lists it.

    Args:
        high (float): warn above this ratio of a term to the task loss. Defaults to 10.
        low (float): warn below this ratio. Defaults to 0.01.
        modules (Sequence[str]): the student's submodules the gradient norms are taken over.
            Defaults to ``('backbone', 'neck')``.

    Config:
        .. code-block:: python

            custom_hooks = [dict(type='StartupReportHook')]
    """

    priority = 'LOW'

    def __init__(self, high: float = 10.0, low: float = 0.01,
                 modules: Sequence[str] = ('backbone', 'neck')) -> None:
        if not 0 < low < high:
            raise ValueError(f'StartupReportHook: expected 0 < low < high, got low={low}, '
                             f'high={high}')
        self.high = high
        self.low = low
        self.modules = tuple(modules)
        self.report = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.report is not None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(model, BaseDistiller):
            self.report = {}
            return
        measured = measure_loss_parts(model, data_batch, runner.optim_wrapper, self.modules,
                                      scheduled=False)
        self.report = startup_report(model, measured, runner.iter, self.high, self.low)
        for line in self.report['lines']:
            runner.logger.info(line)
        for warning in self.report['warnings']:
            runner.logger.warning(f'start-up report: {warning}')
        runner.logger.info(self.report['summary'])
        if is_main_process():
            with open(osp.join(runner.work_dir, REPORT_FILE), 'w') as f:
                json.dump(self.report, f, indent=1)


def startup_report(model: BaseDistiller, measured: Dict[str, dict], iteration: int,
                   high: float = 10.0, low: float = 0.01) -> dict:
    """The report of :class:`StartupReportHook` from :func:`measure_loss_parts`' output."""
    parts, norms = measured['parts'], measured['grad_norms']
    task, task_norm = parts.get('task', 0.0), norms.get('task', 0.0)
    teacher = dict(getattr(model, 'teacher_load_report', None) or {})
    warnings: List[str] = []
    if teacher.get('missing'):
        warnings.append(f'teacher_ckpt {teacher["file"]!r} left {len(teacher["missing"])} teacher '
                        f'keys at their initialisation (first: '
                        f'{", ".join(teacher["missing"][:3])}): a teacher that did not load '
                        'teaches noise; check teacher_ckpt / teacher_ckpt_strict')
    terms = {}
    for name in model.distill_loss_names():
        value, norm = parts.get(name, 0.0), norms.get(name, 0.0)
        ratio = value / task if task else math.inf
        terms[name] = dict(value=value, ratio_to_task=ratio, grad_norm=norm,
                           grad_ratio_to_task=norm / task_norm if task_norm else math.inf,
                           factor=model.distill_loss_scales.get(name, 1.0),
                           weight_key=model.distill_loss_weight_key(name))
        if not math.isfinite(value):
            warnings.append(f'distillation term {name} is {value} at the start: check the teacher '
                            'checkpoint and the term\'s inputs')
        elif not low <= abs(ratio) <= high:
            change = 'lower' if abs(ratio) > high else 'raise'
            warnings.append(f'distillation term {name} is {ratio:.3g}x the task loss (expected '
                            f'{low:g}x-{high:g}x): {change} {terms[name]["weight_key"]}')
    if not math.isfinite(task):
        warnings.append(f'the student\'s task loss is {task} at the start')
    teacher_text = (f'teacher {teacher.get("loaded", "?")} keys loaded, '
                    f'{len(teacher.get("missing", []))} missing, '
                    f'{len(teacher.get("unexpected", []))} unexpected')
    term_text = '; '.join(
        f'{name} {term["value"]:.4g} = {term["ratio_to_task"]:.3g}x task (grad '
        f'{term["grad_ratio_to_task"]:.3g}x)' for name, term in terms.items())
    summary = (f'start-up report (iter {iteration}): {teacher_text}; task loss {task:.4g} (grad '
               f'norm {task_norm:.3g}); {term_text}; '
               f'{len(warnings) or "no"} warning{"" if len(warnings) == 1 else "s"}')
    lines = [f'start-up report: teacher_ckpt {teacher.get("file")!r}: '
             f'{teacher_text[len("teacher "):]}',
             f'start-up report: task losses {task:.4g}, gradient norm {task_norm:.4g}']
    lines += [f'start-up report: {name}: {term["value"]:.4g} ({term["ratio_to_task"]:.3g}x '
              f'task), gradient norm {term["grad_norm"]:.4g} ({term["grad_ratio_to_task"]:.3g}x '
              f'task), schedule factor {term["factor"]:g}, weight {term["weight_key"]}'
              for name, term in terms.items()]
    return dict(iter=iteration, teacher_checkpoint=teacher, task_loss=task,
                task_grad_norm=task_norm, terms=terms, losses=measured['values'],
                warnings=warnings, lines=lines, summary=summary)

"""StartupReportHook: what tools/train.py reports at a distiller's first iteration."""
import json

import torch

from .conftest import NO_VAL, tool_main


def _report(tiny_run, work_dir, *options: str) -> dict:
    tool_main('train')([tiny_run['config'], '--work-dir', str(work_dir), '--cfg-options',
                        'train_cfg.max_iters=1', 'custom_hooks=[]', *NO_VAL, *options])
    return json.loads((work_dir / 'startup_report.json').read_text())


def _logged_first_iteration(work_dir) -> dict:
    """The losses mmengine logged for iteration 1 (the same batch and weights)."""
    text = next(work_dir.glob('*/*.log')).read_text()
    line = next(line for line in text.splitlines() if 'Iter(train) [1/1]' in line)
    fields = line.split('  ')
    return {k: float(v) for k, v in (f.strip().split(': ') for f in fields if 'loss_' in f)}


def test_report_matches_the_first_iteration(tiny_run, tmp_path):
    report = _report(tiny_run, tmp_path / 'work', 'experiment_name=report_ok')
    teacher_keys = torch.load(tiny_run['teacher_ckpt'], weights_only=False)['state_dict']
    assert report['teacher_checkpoint'] == dict(file=tiny_run['teacher_ckpt'],
                                                loaded=len(teacher_keys), missing=[],
                                                unexpected=[])
    logged = _logged_first_iteration(tmp_path / 'work')
    task = logged['loss_cls'] + logged['loss_bbox']
    vkd = sum(v for k, v in logged.items() if k.startswith('loss_vkd_'))
    assert abs(report['task_loss'] - task) < 1e-3
    term = report['terms']['vkd']
    assert abs(term['value'] - vkd) < 1e-3
    assert abs(term['ratio_to_task'] - vkd / task) < 1e-3
    assert term['grad_norm'] > 0 and report['task_grad_norm'] > 0
    assert report['warnings'] == []
    assert report['summary'].startswith(
        f'start-up report (iter 0): teacher {len(teacher_keys)} keys loaded, 0 missing, '
        '0 unexpected; task loss')
    assert report['summary'].endswith('no warnings')
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert report['summary'] in log


def test_an_oversized_term_is_named_with_its_config_key(tiny_run, tmp_path):
    report = _report(tiny_run, tmp_path / 'work', 'model.distill_losses.vkd.loss_weight=100.0',
                     'experiment_name=report_high')
    ratio = report['terms']['vkd']['ratio_to_task']
    assert ratio > 10
    assert report['warnings'] == [f'distillation term vkd is {ratio:.3g}x the task loss '
                                  '(expected 0.01x-10x): lower '
                                  'model.distill_losses.vkd.loss_weight']
    assert report['summary'].endswith('1 warning')

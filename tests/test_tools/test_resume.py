"""--resume after a SIGKILL: training continues from the last complete checkpoint and ends with
the same student as an uninterrupted run (nothing lost, nothing repeated)."""
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint

from vkd_mmdet.testing import save_random_checkpoint
from vkd_mmdet.utils import CheckpointMismatchError, find_resumable_checkpoint

from .conftest import (
    NO_EXPORT,
    NO_VAL,
    REPO,
    assert_resumed_like_uninterrupted,
    probe_config,
    student_state,
    subprocess_env,
    tool_main,
)


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_run, tmp_path, one_thread):
    # Uninterrupted: 4 iterations.
    tool_main('train')([tiny_run['config'], '--work-dir', str(tmp_path / 'full'),
                        '--cfg-options', NO_EXPORT, *NO_VAL, 'experiment_name=resume_full'])
    full = student_state(str(tmp_path / 'full' / 'iter_4.pth'))

    # The same run, checkpointing every iteration, SIGKILLed while hanging after iteration 3.
    work_dir = tmp_path / 'killed'
    marker = tmp_path / 'hanging'
    config = probe_config(tiny_run, 'hang_after_3',
                          f"[dict(type='HangAfterIterHook', at_iter=3, marker='{marker}')]")
    job = subprocess.Popen(
        [sys.executable, str(REPO / 'tools' / 'train.py'), config, '--work-dir', str(work_dir),
         '--cfg-options', 'default_hooks.checkpoint.interval=1', *NO_VAL],
        env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not marker.exists() and job.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), 'the job never reached iteration 3'
        os.kill(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == -signal.SIGKILL

    # What a kill during the next save leaves: a half-written newer checkpoint and, killed while
    # `last_checkpoint` was rewritten, an empty record. mmengine's own lookup trusts the record.
    complete = (work_dir / 'iter_3.pth').read_bytes()
    (work_dir / 'iter_4.pth').write_bytes(complete[:len(complete) // 2])
    (work_dir / 'last_checkpoint').write_text('')
    assert find_latest_checkpoint(str(work_dir)) == ''
    assert find_resumable_checkpoint(str(work_dir)) == str(work_dir / 'iter_3.pth')
    with pytest.raises(Exception):  # noqa: B017 (any error: the half file cannot be read)
        torch.load(work_dir / 'iter_4.pth', weights_only=False)

    runner = tool_main('train')([tiny_run['config'], '--work-dir', str(work_dir), '--resume',
                                 '--cfg-options', NO_EXPORT, *NO_VAL,
                                 'experiment_name=resume_after_kill'])
    assert runner.iter == 4
    assert_resumed_like_uninterrupted(student_state(str(work_dir / 'iter_4.pth')), full,
                                      student_state(str(work_dir / 'iter_3.pth')))


def test_resume_refuses_another_methods_checkpoint(tiny_run, tmp_path):
    # Two methods' configs trained into one work dir (what same-named configs did under
    # ./work_dirs/<basename>): VkD first, then FitNet with --resume.
    work_dir = str(tmp_path / 'shared')
    tool_main('train')([tiny_run['config'], '--work-dir', work_dir, '--cfg-options', NO_EXPORT,
                        *NO_VAL, 'train_cfg.max_iters=2'])
    fitnet = tiny_run['root'] / 'tiny_fitnet_retinanet.py'
    fitnet.write_text(
        f"_base_ = ['{tiny_run['config']}']\n"
        "model = dict(distill_losses=dict(_delete_=True, fitnet=dict(\n"
        "    type='FitNetLoss', in_channels=16, out_channels=32)))\n")
    with pytest.raises(CheckpointMismatchError) as error:
        tool_main('train')([str(fitnet), '--work-dir', work_dir, '--resume',
                            '--cfg-options', NO_EXPORT, *NO_VAL])
    message = str(error.value)
    assert message.startswith(os.path.join(work_dir, 'iter_2.pth'))
    assert re.search(r'missing keys \d+ \(first: distill_losses\.fitnet\.0\.projector\.', message)
    assert re.search(r'unexpected keys \d+ \(first: distill_losses\.vkd\.0\.projector\.', message)
    assert 'model.load_strict=False' in message

    # The override loads it as mmengine does: the student weights, not the VkD projectors.
    cfg = Config.fromfile(str(fitnet))
    cfg.model.load_strict = False
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    _load_like_the_runner(model, os.path.join(work_dir, 'iter_2.pth'))
    loaded = student_state(os.path.join(work_dir, 'iter_2.pth'))
    for key, value in model.student.state_dict().items():
        torch.testing.assert_close(value, loaded[key], rtol=0, atol=0, msg=key)


def _load_like_the_runner(model: torch.nn.Module, checkpoint: str) -> None:
    """``Runner.load_checkpoint`` (resume / load_from) of ``checkpoint`` into ``model``."""
    runner = SimpleNamespace(model=model, call_hook=lambda *args, **kwargs: None,
                             logger=MMLogger.get_current_instance())
    Runner.load_checkpoint(runner, checkpoint)


def test_plain_mmdet_model_keeps_mmengines_non_strict_load(tiny_run, tmp_path):
    # A plain detector (no load post-hook) takes a distiller's checkpoint as mmengine does: the
    # matching keys load (none here, the student's are prefixed), the rest is only logged.
    work_dir = str(tmp_path / 'vkd')
    tool_main('train')([tiny_run['config'], '--work-dir', work_dir, '--cfg-options', NO_EXPORT,
                        *NO_VAL, 'train_cfg.max_iters=2'])
    detector = MODELS.build(tiny_run['student'])
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    _load_like_the_runner(detector, os.path.join(work_dir, 'iter_2.pth'))
    assert all(torch.equal(v, before[k]) for k, v in detector.state_dict().items())


def test_mgd_run_with_inherit_resumes_bit_exact(tiny_run, tmp_path, one_thread):
    """MGD draws its masks from the distiller's checkpointed generator, and its student inherits
    the teacher's neck and head in init_weights: a run stopped after iteration 2 and resumed ends
    with exactly the student of an uninterrupted 4-iteration run (the resume loads over the
    inherited weights; the masks continue where they stopped)."""
    # A teacher of the student's own architecture, so that the student can inherit from it.
    teacher_ckpt = save_random_checkpoint(tiny_run['student'], str(tmp_path / 'teacher.pth'),
                                          seed=3)
    config = tmp_path / 'tiny_mgd_retinanet.py'
    config.write_text(
        f"_base_ = ['{tiny_run['config']}']\n"
        f"model = dict(teacher=dict(_delete_=True, **{tiny_run['student']!r}),\n"
        f"             teacher_ckpt='{teacher_ckpt}', inherit=('neck', 'bbox_head'),\n"
        "             distill_losses=dict(_delete_=True, mgd=dict(\n"
        "                 type='MGDLoss', in_channels=16, out_channels=16)))\n")
    full, part = tmp_path / 'full', tmp_path / 'part'
    tool_main('train')([str(config), '--work-dir', str(full), '--cfg-options', NO_EXPORT,
                        *NO_VAL])
    tool_main('train')([str(config), '--work-dir', str(part), '--cfg-options', NO_EXPORT,
                        *NO_VAL, 'train_cfg.max_iters=2'])
    runner = tool_main('train')([str(config), '--work-dir', str(part), '--resume',
                                 '--cfg-options', NO_EXPORT, *NO_VAL])
    assert runner.iter == 4
    at_resume = torch.load(part / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert 'distill_generator._extra_state' in at_resume['state_dict']
    resumed, uninterrupted = (torch.load(path / 'iter_4.pth', map_location='cpu',
                                         weights_only=False)['state_dict']
                              for path in (part, full))
    assert_resumed_like_uninterrupted(student_state(str(part / 'iter_4.pth')),
                                      student_state(str(full / 'iter_4.pth')),
                                      student_state(str(part / 'iter_2.pth')))
    # bit-exact: the student, the generation blocks and the generator's state
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key

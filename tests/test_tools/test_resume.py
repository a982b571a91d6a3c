"""--resume after a SIGKILL: training continues from the last complete checkpoint and ends with
the same student as an uninterrupted run (nothing lost, nothing repeated)."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.runner.checkpoint import find_latest_checkpoint

from vkd_mmdet.utils import find_resumable_checkpoint

from .conftest import NO_VAL, REPO, probe_config, student_state, subprocess_env, tool_main

NO_EXPORT = 'custom_hooks=[]'


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_run, tmp_path):
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
    resumed = student_state(str(work_dir / 'iter_4.pth'))
    after_3 = student_state(str(work_dir / 'iter_3.pth'))
    assert resumed.keys() == full.keys()
    assert any(not torch.equal(after_3[k], full[k]) for k in full)  # iteration 4 did train
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)

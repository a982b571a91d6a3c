"""Launch paths: tools/dist_train.sh on 2 CPU processes, mmdet's own train.py, --amp on CPU."""
import json
import math
import os
import subprocess
import sys

import mmdet

from .conftest import NO_VAL, REPO, free_port, probe_config, run_python, subprocess_env, tool_main


def test_dist_train_sh_trains_two_cpu_ranks(tiny_run, tmp_path):
    probes = tmp_path / 'probes'
    config = probe_config(tiny_run, 'dist_probe', f"[dict(type='TrainProbeHook', "
                          f"out_dir='{probes}')]")
    work_dir = tmp_path / 'work'
    env = dict(subprocess_env(), PYTHON=sys.executable, PORT=str(free_port()))
    result = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'), config, '2', '--work-dir',
         str(work_dir), '--cfg-options', 'train_cfg.max_iters=2', *NO_VAL],
        env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    ranks = [json.loads((probes / f'rank{r}.json').read_text()) for r in (0, 1)]
    for rank, record in enumerate(ranks):
        assert (record['rank'], record['world_size'], record['iter']) == (rank, 2, 2)
        assert record['backend'] == 'gloo'
        # the config's optimizer constructor, on every rank: no decay on the projectors alone
        assert record['decays'] == {'orthogonal': [0.0], 'other': [0.0001]}
        assert len(record['losses']) == 2
        assert all(math.isfinite(v) for losses in record['losses'] for v in losses.values())
    # Each rank saw its own data shard, and DDP kept the students identical.
    assert ranks[0]['losses'] != ranks[1]['losses']
    assert ranks[0]['checksum'] == ranks[1]['checksum']
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']


def test_mmdet_own_train_py_trains_our_config(tiny_run, tmp_path):
    """custom_imports is all mmdet's tools/train.py needs (the export hook runs there too); the
    safe loading is installed when the distiller is built, and says so once in the run's log."""
    mmdet_train = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    work_dir = tmp_path / 'work'
    run_python([mmdet_train, tiny_run['config'], '--work-dir', str(work_dir),
                '--cfg-options', 'train_cfg.max_iters=2'], timeout=240)
    assert (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'student' / 'iter_2_student.pth').is_file()
    log = next(work_dir.glob('*/vis_data/scalars.json')).read_text().splitlines()
    losses = [entry for entry in map(json.loads, log) if 'loss' in entry]
    assert [entry['iter'] for entry in losses] == [1, 2]
    assert all(math.isfinite(entry['loss_vkd_p3']) for entry in losses)
    run_log = next(work_dir.glob('*/*.log')).read_text()
    assert run_log.count('vkd_mmdet: safe checkpoint loading is active') == 1


def test_amp_on_cpu_runs_bf16_forward_and_fp32_distillation(tiny_run, tmp_path):
    probes = tmp_path / 'probes'
    config = probe_config(tiny_run, 'amp_probe', f"[dict(type='TrainProbeHook', "
                          f"out_dir='{probes}')]")
    runner = tool_main('train')([config, '--amp', '--work-dir', str(tmp_path / 'work'),
                                 '--cfg-options', 'train_cfg.max_iters=1', *NO_VAL,
                                 'experiment_name=amp_cpu'])
    assert type(runner.optim_wrapper).__name__ == 'CPUAmpOptimWrapper'
    record = json.loads((probes / 'rank0.json').read_text())
    assert record['neck_dtypes'] == ['torch.bfloat16']
    assert record['distill_dtypes'] == ['torch.float32']
    assert all(math.isfinite(v) for v in record['losses'][0].values())


def test_dist_train_refuses_a_decayed_projector_on_both_ranks(tiny_run, tmp_path):
    """MMDistributedDataParallel bypasses the distiller's train_step: the distiller's guard (a
    torch optimizer step pre-hook, no config key) refuses an optimizer built without the
    constructor at its first step, on each of 2 gloo ranks."""
    config = tmp_path / 'decayed_projector.py'
    config.write_text(f"_base_ = ['{tiny_run['config']}']\n"
                      "optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict("
                      "type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))  # decays all\n")
    work_dir = tmp_path / 'work'
    env = dict(subprocess_env(), PYTHON=sys.executable, PORT=str(free_port()))
    result = subprocess.run(
        ['bash', str(REPO / 'tools' / 'dist_train.sh'), str(config), '2', '--work-dir',
         str(work_dir), '--cfg-options', 'train_cfg.max_iters=2', *NO_VAL],
        env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    # One refusal per rank. The ranks write to one pipe, so a rank's line can land in the middle
    # of the other's (torch 2.1 prints the tracebacks bare, torch 2.14's c10d excepthook prefixes
    # each line with '[rank<N>]: '): count in the raw output, check each refusal's own text.
    message = 'ValueError: optim_wrapper: orthogonal projector'
    assert output.count(message) == 2, output[-6000:]
    refusals = [line[line.index(message):] for line in output.splitlines() if message in line]
    for refusal in refusals:
        assert 'weight_decay=0.0001' in refusal and 'DistillOptimWrapperConstructor' in refusal
    assert not list(work_dir.glob('*.pth'))  # no iteration ran

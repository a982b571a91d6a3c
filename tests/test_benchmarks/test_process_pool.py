"""The process pool's bookkeeping without training: finished runs and cached teachers are reused
in task order, and nothing is spawned for them."""
import json
import os.path as osp

from vkd_mmdet.benchmarks import run_key, teacher_settings
from vkd_mmdet.benchmarks.process_pool import run_all, train_teachers


def _finished(work_dir, config, seed, options, ap):
    record = dict(run_key(config, seed, 5, options), name='x', AP=ap, wall_time=1.0)
    work_dir.mkdir(parents=True)
    (work_dir / 'record.json').write_text(json.dumps(record))
    return record


def test_finished_runs_are_reused_in_task_order(tmp_path, capsys):
    tasks = []
    for i, (seed, ap) in enumerate([(1, 0.2), (0, 0.1)]):
        options = {'model.distill_losses.vkd.loss_weight': 4.0 + i}
        work_dir = tmp_path / f'run{i}'
        _finished(work_dir, 'configs/demo/vkd.py', seed, options, ap)
        tasks.append(dict(row=('fcos', 'vkd', 1.0), config='configs/demo/vkd.py',
                          work_dir=str(work_dir), iters=5, seed=seed, name='vkd',
                          cfg_options=options, teacher_ckpt='t.pth'))
    records = run_all(tasks, jobs=2, threads=1, reuse=True)
    assert [(r['seed'], r['AP'], r['row']) for r in records] == \
        [(1, 0.2, ('fcos', 'vkd', 1.0)), (0, 0.1, ('fcos', 'vkd', 1.0))]
    assert '2 of 2 runs reused, 0 to evaluate again, 0 to train' in capsys.readouterr().out


def test_a_run_with_other_options_is_not_reused(tmp_path):
    from vkd_mmdet.benchmarks import finished_run
    _finished(tmp_path / 'run', 'configs/demo/vkd.py', 0, {'a': 1}, 0.1)
    assert finished_run(str(tmp_path / 'run'), run_key('configs/demo/vkd.py', 0, 5, {'a': 1}))
    assert finished_run(str(tmp_path / 'run'), run_key('configs/demo/vkd.py', 0, 5, {'a': 2})) \
        is None
    assert finished_run(str(tmp_path / 'run'), run_key('configs/demo/vkd.py', 1, 5, {'a': 1})) \
        is None


def test_a_run_distilled_from_another_teacher_is_not_reused(tmp_path, capsys):
    # A teacher trained again (more iterations here) makes its students' runs stale.
    old = teacher_settings('configs/demo/teacher_gfl.py', 600, {'train_set': 'abc'})
    new = teacher_settings('configs/demo/teacher_gfl.py', 1500, {'train_set': 'abc'})
    record = dict(run_key('configs/demo/vkd.py', 0, 5, {}, 'abc', old), name='vkd', AP=0.1,
                  wall_time=1.0)
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'record.json').write_text(json.dumps(record))
    from vkd_mmdet.benchmarks import finished_run
    assert finished_run(str(tmp_path / 'run'), run_key('configs/demo/vkd.py', 0, 5, {}, 'abc',
                                                       old)) == record
    assert finished_run(str(tmp_path / 'run'), run_key('configs/demo/vkd.py', 0, 5, {}, 'abc',
                                                       new)) is None
    # the pool keys its tasks the same way: the run of the old teacher is reused
    task = dict(row=('gfl', 'vkd', 1.0), config='configs/demo/vkd.py', work_dir=str(
        tmp_path / 'run'), iters=5, seed=0, name='vkd', cfg_options={}, train_set='abc',
        teacher_ckpt='t.pth', teacher=old)
    assert run_all([task], jobs=1, threads=1, reuse=True)[0]['AP'] == 0.1
    assert '1 of 1 runs reused' in capsys.readouterr().out


def test_cached_teachers_are_read_not_trained(tmp_path):
    data = dict(num_train=6, num_val=4, image_size=[48, 64], max_objects=4,
                object_size=[0.25, 0.6])
    tasks = []
    for proxy in ('fcos', 'faster-rcnn'):
        work_dir = tmp_path / proxy
        work_dir.mkdir()
        (work_dir / 'teacher.pth').write_bytes(b'')
        config = f'configs/demo/teacher_{proxy}.py'
        record = dict(AP=0.1, checkpoint=str(work_dir / 'teacher.pth'),
                      settings=teacher_settings(config, 600, data, {'x': 1}))
        (work_dir / 'record.json').write_text(json.dumps(record))
        tasks.append((proxy, dict(config=config, work_dir=str(work_dir), iters=600, data=data,
                                  cfg_options={'x': 1})))
    teachers = train_teachers(tasks, jobs=2, threads=1)
    assert {p: osp.basename(osp.dirname(t['checkpoint'])) for p, t in teachers.items()} == \
        {'fcos': 'fcos', 'faster-rcnn': 'faster-rcnn'}

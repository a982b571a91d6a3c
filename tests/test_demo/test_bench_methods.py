"""The leaderboard (vkd_mmdet.benchmarks, tools/bench_methods.py) shortened: both proxies, a few
rows, 1 seed, tiny images and runs."""
import json
import os.path as osp

import pytest
from tool_scripts import TOOLS, load_tool, run_python

from vkd_mmdet.benchmarks import (
    GRAD_NORM_HOOK,
    ND_CONFIG,
    PROXIES,
    ROWS,
    leaderboard,
    make_tune_split,
    methods_table,
    read_per_seed_csv,
    weight_options,
)
from vkd_mmdet.benchmarks.leaderboard import selected_rows, student_tasks
from vkd_mmdet.benchmarks.methods_page import (
    TUNED_SECTION,
    page,
    page_section,
    proxies_section,
    section_markers,
    write_page,
)
from vkd_mmdet.benchmarks.methods_report import sweep_table
from vkd_mmdet.testing import make_synthetic_coco

from .tiny_pipelines import TINY_PIPELINES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

DEMO = osp.join(REPO, 'configs', 'demo')
# Every prediction is kept so that COCO evaluation has results after a few iterations.
KEEP = {'one-stage': 'dict(score_thr=0.0, max_per_img=20)',
        'faster-rcnn': 'dict(rcnn=dict(score_thr=0.0, max_per_img=20))'}
TESTED = ('student', 'vkd', 'nd', 'crosskd')


def _tiny_configs(config_dir):
    """The shipped demo configs of the tested rows, each inherited at 64 px, batch 2."""
    names = {ND_CONFIG}
    for proxy in PROXIES.values():
        names |= {proxy.teacher, proxy.student}
    names |= {r.config for r in ROWS if r.key in TESTED}
    for name in names:
        keep = KEEP['faster-rcnn' if 'faster-rcnn' in name else 'one-stage']
        model = (f'model = dict(test_cfg={keep})' if name.startswith(('teacher', 'student'))
                 else f'model = dict(student=dict(test_cfg={keep}))')
        (config_dir / name).write_text(f"_base_ = ['{DEMO}/{name}']\n{TINY_PIPELINES}{model}\n")


def _argv(tmp, *extra):
    """A 2-iteration bench of every proxy on 6 + 4 tiny images in ``tmp``, with the configs of
    _tiny_configs."""
    return ['--work-dir', str(tmp / 'work'), '--demo-work-dir', str(tmp / 'demo'),
            '--data-root', str(tmp / 'data'), '--config-dir', str(tmp / 'configs'),
            '--num-train', '6', '--num-val', '4', '--image-size', '48', '64',
            '--teacher-iters', '2', '--student-iters', '2', '--seeds', '0', '--jobs', '2',
            '--proxies', *PROXIES, *extra]


def _bench(tmp, argv, table='methods'):
    """``tools/bench_methods.py argv`` in a subprocess (end to end, as ``make bench-methods``
    runs it): its stdout and the results it wrote for ``table``."""
    out = run_python([str(TOOLS / 'bench_methods.py'), *argv], timeout=900).stdout
    with open(tmp / 'work' / 'val' / f'{table}.json') as f:
        return out, json.load(f)


@pytest.fixture(scope='module')
def bench_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    (tmp / 'configs').mkdir()
    _tiny_configs(tmp / 'configs')
    argv = _argv(tmp, '--rows', *TESTED, '--markdown', str(tmp / 'docs' / 'methods.md'))
    return tmp, argv, _bench(tmp, argv)[1]


def test_every_row_of_both_proxies_is_trained_and_tabled(bench_run):
    tmp, _, results = bench_run
    runs = {tuple(r['row'][:2]): r for r in results['runs']}
    assert set(runs) == {('fcos', 'student'), ('fcos', 'vkd'), ('faster-rcnn', 'student'),
                         ('faster-rcnn', 'vkd'), ('faster-rcnn', 'nd'), ('gfl', 'student'),
                         ('gfl', 'vkd'), ('gfl', 'crosskd')}
    page = (tmp / 'docs' / 'methods.md').read_text()
    for (proxy, key), run in runs.items():
        student, teacher = runs[(proxy, 'student')], results['teachers'][proxy]
        label = next(r.label for r in ROWS if (r.proxy, r.key) == (proxy, key))
        line = next(x for x in page.splitlines()
                    if x.startswith(f'| {label} |') and proxy.split('-')[0] in x.lower())
        cells = [c.strip() for c in line.split('|')[1:-1]]
        assert cells[3:5] == [f'{100 * run["AP"]:.1f}', f'{100 * run["AP50"]:.1f}']
        assert cells[9] == f'{run["train_time"] / student["train_time"]:.2f}x'
        assert cells[6:8] == ['-', '-']  # one seed: no interval, no rank
        if key != 'student':
            gain = run['AP'] - student['AP']
            assert cells[5] == f'{100 * gain:+.1f}'
            gap = teacher['AP'] - student['AP']
            assert cells[8] == (f'{100 * gain / gap:.0f} %' if gap > 0 else 'n/a')
        versus = run['AP'] - runs[(proxy, 'vkd')]['AP']
        assert cells[10:] == (['-', '-'] if key in ('student', 'vkd') else
                              [f'{100 * versus:+.1f}', '-'])


def test_per_seed_file_beside_the_page_recomputes_its_table(bench_run):
    tmp, _, results = bench_run
    records, teachers = read_per_seed_csv(str(tmp / 'docs' / 'methods_per_seed.csv'))
    assert [(tuple(r['row']), r['seed'], r['AP']) for r in results['runs']] == \
        [(r['row'], r['seed'], r['AP']) for r in records]
    rows = [r for r in ROWS if r.key in TESTED]
    page = (tmp / 'docs' / 'methods.md').read_text()
    assert methods_table(rows, records, teachers, PROXIES, {}) in page
    assert '[methods_per_seed.csv](methods_per_seed.csv)' in page


def test_nd_row_uses_centres_written_by_compute_class_centers(bench_run):
    import torch
    tmp, _, results = bench_run
    nd = next(r for r in results['runs'] if r['row'][1] == 'nd')
    centers = nd['options']['model.distill_losses.nd.class_centers']
    saved = torch.load(centers, weights_only=True)
    # 5 shape classes + background, teacher box-head width 256
    assert saved['centers'].shape == (6, 256) and saved['counts'][:5].sum() > 0


def test_reuse_runs_trains_nothing_twice(bench_run):
    tmp, argv, results = bench_run
    record = osp.join(tmp, 'work', 'val', 'fcos', 'vkd_s0', 'record.json')
    before = osp.getmtime(record)
    out, again = _bench(tmp, argv + ['--reuse-runs'])
    assert osp.getmtime(record) == before
    assert '8 of 8 runs reused, 0 to evaluate again, 0 to train' in out
    assert [r['AP'] for r in again['runs']] == [r['AP'] for r in results['runs']]


def test_another_val_set_evaluates_finished_runs_again_and_trains_nothing(bench_run):
    tmp, argv, results = bench_run
    checkpoints = [tmp / 'work' / 'val' / 'gfl' / 'crosskd_s0' / 'iter_2.pth',
                   tmp / 'work' / 'teacher_gfl' / 'teacher.pth', tmp / 'demo' / 'teacher' /
                   'teacher.pth']
    before = [osp.getmtime(p) for p in checkpoints]
    grown = list(argv)
    grown[grown.index('--num-val') + 1] = '6'
    out, larger = _bench(tmp, grown + ['--reuse-runs'])
    assert '0 of 8 runs reused, 8 to evaluate again, 0 to train' in out
    assert {r['eval_set'] for r in larger['runs']} == {larger['teachers']['gfl']['eval_set']}
    assert larger['runs'][0]['eval_set'] != results['runs'][0]['eval_set']
    out, back = _bench(tmp, argv + ['--reuse-runs'])
    assert '0 of 8 runs reused, 8 to evaluate again, 0 to train' in out
    # Measured again on the first set: what each run's own final validation measured.
    assert [(r['AP'], r['AP50']) for r in back['runs']] == \
        [(r['AP'], r['AP50']) for r in results['runs']]
    assert {p: t['AP'] for p, t in back['teachers'].items()} == \
        {p: t['AP'] for p, t in results['teachers'].items()}
    assert [osp.getmtime(p) for p in checkpoints] == before


def test_row_seeds_train_those_rows_only_and_the_page_says_which_interval(tmp_path, capsys):
    tool = load_tool('bench_methods.py')
    make_synthetic_coco(str(tmp_path), num_train=4, num_val=2)
    args = tool.parse_args(['--data-root', str(tmp_path), '--proxies', 'gfl', '--seeds', '0',
                            '1', '--row-seeds', 'student=1-3,5', 'crosskd=3'])
    assert args.row_seeds == {'student': [1, 2, 3, 5], 'crosskd': [3]}
    rows = [r for r in ROWS if r.proxy == 'gfl' and r.key in ('student', 'vkd', 'crosskd')]
    settings = dict(config='teacher_gfl.py', iters=600)
    teachers = {'gfl': dict(checkpoint='teacher.pth', settings=settings)}
    tasks = student_tasks(args, rows, 'val', {}, teachers, {}, {})
    assert [(t['seed'], t['row'][1]) for t in tasks] == [
        (0, 'student'), (0, 'vkd'), (0, 'crosskd'), (1, 'student'), (1, 'vkd'), (1, 'crosskd'),
        (2, 'student'), (3, 'student'), (3, 'crosskd'), (5, 'student')]
    # a distilled run is keyed on its teacher too: a teacher trained again makes it stale
    assert [t.get('teacher') for t in tasks[:3]] == [None, settings, settings]
    gfl = dict(AP=0.095, AP50=0.18, settings=settings)
    runs = [dict(row=('gfl', 'student', 1.0), wall_time=60.0, train_time=50.0)]
    text = page(args, 'cmd', 'TABLE', {'gfl': gfl}, 60.0, runs, 'x.csv')
    assert 'more seeds for some rows: student alone 2-3, 5; CrossKD 3 (' in text
    assert "where the student alone ran seeds the row did not" in text
    assert "95 % CI: Welch's t-interval" in text
    paired = page(tool.parse_args(['--seeds', '0', '1']), 'cmd', 'TABLE', {'gfl': gfl}, 60.0,
                  runs, 'x.csv')
    assert 'the Student-t interval of the mean paired difference' in paired
    assert 'Welch' not in paired
    # the flag given twice adds up (argparse 'extend')
    twice = tool.parse_args(['--row-seeds', 'student=4-5', '--row-seeds', 'vkd=4'])
    assert twice.row_seeds == {'student': [4, 5], 'vkd': [4]}
    for wrong, message in [
            (['--sweep-weights', '--row-seeds', 'student=4'], 'not with --sweep-weights'),
            (['--row-seeds', 'nosuchrow=4'],
             '--row-seeds nosuchrow: not among the rows of this run'),
            (['--proxies', 'fcos', '--row-seeds', 'ld=4'],
             '--row-seeds ld: not among the rows of this run'),
            (['--rows', 'vkd', '--row-seeds', 'fitnet=4'],
             '--row-seeds fitnet: not among the rows of this run'),
            (['--proxies', 'gfl', '--row-seeds', 'student=4-9', 'ld=4', 'ld=5'],
             'ld=...: a row given twice'),
            (['--proxies', 'gfl', '--row-seeds', 'student=4-9', 'ld=8-11'],
             "seeds 10-11 are not the student alone's"),
            (['--row-seeds', 'ld=5-4'], 'runs backwards'),
            (['--row-seeds', 'ld'], 'expected ROW=SEEDS')]:
        with pytest.raises(SystemExit):
            tool.parse_args(wrong)
        assert message in capsys.readouterr().err
    # rows tuned elsewhere (--weights-from) are known only to the run: refused there too
    narrowed = tool.parse_args(['--proxies', 'gfl', '--row-seeds', 'ld=1'])
    narrowed.rows = ['vkd']
    with pytest.raises(ValueError, match='--row-seeds ld: not among the rows of this run'):
        selected_rows(narrowed, {})


class _TeachersAsked(Exception):
    pass


def test_each_proxy_trains_its_teacher_for_its_own_iterations(tmp_path, monkeypatch):
    asked = {}

    def ask(tasks, jobs, threads):
        asked.update(tasks)
        raise _TeachersAsked

    monkeypatch.setattr(leaderboard, 'train_teachers', ask)
    tool = load_tool('bench_methods.py')
    argv = ['--data-root', str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'work'),
            '--num-train', '4', '--num-val', '2', '--proxies', 'fcos', 'gfl']
    with pytest.raises(_TeachersAsked):
        leaderboard.run_leaderboard(tool.parse_args(argv), 'cmd')
    own = {p: t['iters'] for p, t in asked.items()}
    assert own == {p: PROXIES[p].teacher_iters for p in ('fcos', 'gfl')}
    # the GFL teacher trains longer than the demo's FCOS teacher (rows.PROXIES says why)
    assert own['gfl'] > own['fcos']
    asked.clear()
    with pytest.raises(_TeachersAsked):
        leaderboard.run_leaderboard(tool.parse_args(argv + ['--teacher-iters', '7']), 'cmd')
    assert {t['iters'] for t in asked.values()} == {7}
    # the page states each teacher's own iterations, from the settings it was trained with
    teachers = {p: dict(AP=0.1, AP50=0.2, settings=dict(iters=i)) for p, i in own.items()}
    runs = [dict(row=(p, 'student', 1.0), wall_time=60.0, train_time=50.0) for p in own]
    text = page(tool.parse_args(argv), 'cmd', 'TABLE', teachers, 60.0, runs, 'x.csv')
    assert f'teacher 10.0 AP ({own["gfl"]} iterations' in text
    assert f'teacher 10.0 AP ({own["fcos"]} iterations' in text


def test_config_readmes_need_the_page_they_are_written_from():
    with pytest.raises(SystemExit):
        load_tool('bench_methods.py').parse_args(['--config-readmes', 'configs'])


def test_tune_split_holds_out_training_images_and_leaves_val_alone(tmp_path):
    make_synthetic_coco(str(tmp_path), num_train=10, num_val=3)
    make_tune_split(str(tmp_path), 0.3)
    ann = tmp_path / 'annotations'
    load = lambda name: json.loads((ann / f'instances_{name}.json').read_text())  # noqa: E731
    train, tune_train, tune_val = load('train'), load('tune-train'), load('tune-val')
    ids = lambda coco: {im['id'] for im in coco['images']}  # noqa: E731
    assert len(ids(tune_val)) == 3 and not ids(tune_val) & ids(tune_train)
    assert ids(tune_val) | ids(tune_train) == ids(train)
    for part in (tune_train, tune_val):
        assert {a['image_id'] for a in part['annotations']} <= ids(part)
    assert sum(len(p['annotations']) for p in (tune_train, tune_val)) == \
        len(train['annotations'])
    with pytest.raises(ValueError, match='--tune-fraction 0'):
        make_tune_split(str(tmp_path), 0.0)


def test_weight_sweep_scales_every_stated_loss_weight():
    kdpp = osp.join(DEMO, 'kdpp_faster-rcnn_r18-w32_r18-w16.py')
    assert weight_options(kdpp, 0.5) == {
        'model.distill_losses.nd.loss_weight': 0.75,
        'model.distill_losses.kd.loss_weight': 0.5}
    for row in ROWS:  # every shipped row can be swept
        if row.key != 'student':
            assert weight_options(osp.join(DEMO, row.config), 2.0)


def test_sweep_picks_the_best_tune_ap_per_row():
    rows = [r for r in ROWS if r.proxy == 'fcos' and r.key in ('student', 'vkd',
                                                                                 'pkd')]
    aps = {('student', 1.0): 0.03, ('vkd', 0.5): 0.05, ('vkd', 1.0): 0.04, ('vkd', 2.5): 0.06,
           ('pkd', 0.5): 0.07, ('pkd', 1.0): 0.07, ('pkd', 2.5): 0.01}
    records = [dict(row=['fcos', k, f], AP=ap, seed=0) for (k, f), ap in aps.items()]
    table, best = sweep_table(rows, records, {'fcos': dict(AP=0.12)})
    assert best == {'fcos/vkd': 2.5, 'fcos/pkd': 1.0}  # a tie goes to the factor nearest 1
    assert '| VkD | 5.0 | 4.0 | 6.0 | x2.5 |' in table


def test_diagnosis_runs_its_variants_and_measures_gradient_norms(tmp_path):
    import numpy as np
    (tmp_path / 'configs').mkdir()
    _tiny_configs(tmp_path / 'configs')
    argv = _argv(tmp_path, '--diagnosis', '--rows', 'vkd', 'vkd-w6', 'vkd-padstats')
    _, results = _bench(tmp_path, argv, 'diagnosis')
    runs = {r['row'][1]: r for r in results['runs']}
    assert set(runs) == {'student', 'vkd', 'vkd-w6', 'vkd-padstats', 'vkd+grad-norms'}
    assert runs['vkd-w6']['options']['model.distill_losses.vkd.loss_weight'] == 6.0
    assert runs['vkd-padstats']['options']['model.distill_losses.vkd.ignore_padding'] is False
    measured = runs['vkd+grad-norms']
    assert measured['options']['custom_hooks'][-1] == GRAD_NORM_HOOK
    # The hook leaves training alone: the measured run scores what the plain run scores.
    assert measured['AP'] == runs['vkd']['AP']
    log_dir = osp.dirname(osp.dirname(measured['scalars']))
    with open(osp.join(log_dir, 'grad_norms.json')) as f:
        history = json.load(f)
    assert [h['iter'] for h in history] == [0, 1]  # 2 iterations: all of them are measured
    table = (tmp_path / 'work' / 'val' / 'diagnosis.md').read_text()
    line = next(x for x in table.splitlines() if x.startswith('| VkD | ') and '‖' not in x
                and x.count('|') == 8)
    cells = [c.strip() for c in line.split('|')[1:-1]]
    assert cells[1:3] == [f'{history[0]["distill"]:.3g}', f'{history[1]["distill"]:.3g}']
    ratio = [h['distill'] / h['task'] for h in history]
    assert cells[3:5] == [f'{np.mean(ratio[:1]):.2f}', f'{np.mean(ratio[1:]):.2f}']
    assert cells[5:] == [f'{100 * measured["AP"]:.1f}'] * 2
    w6 = next(x for x in table.splitlines() if x.startswith("| VkD at PKD's loss scale |"))
    # the last two columns: the paired AP difference to VkD of the same seed (one seed: no
    # interval)
    assert [c.strip() for c in w6.split('|')[-3:-1]] == \
        [f'{100 * (runs["vkd-w6"]["AP"] - runs["vkd"]["AP"]):+.1f}', '-']


def test_tuned_section_survives_the_paper_run_and_is_replaced_by_the_next_tuned_run(tmp_path):
    path = str(tmp_path / 'methods.md')
    begin, end = section_markers(TUNED_SECTION)
    write_page(path, '# page 1\n| paper 1 |\n', ran_proxies=['fcos'])
    write_page(path, '## tuned 1', section=TUNED_SECTION)
    write_page(path, '# page 2\n| paper 2 |\n', ran_proxies=['fcos'])
    text = (tmp_path / 'methods.md').read_text()
    assert text.startswith('# page 2\n| paper 2 |\n') and 'page 1' not in text
    assert text.count(begin) == 1 and '## tuned 1' in text
    write_page(path, '## tuned 2', section=TUNED_SECTION)
    text = (tmp_path / 'methods.md').read_text()
    assert '## tuned 2' in text and 'tuned 1' not in text and '| paper 2 |' in text
    assert text.index(begin) < text.index('## tuned 2') < text.index(end)


def test_the_page_is_written_by_runs_that_cover_its_proxies():
    assert page_section(['fcos', 'faster-rcnn']) is None
    assert page_section(['faster-rcnn', 'gfl', 'fcos']) is None
    assert page_section(['gfl']) == proxies_section(['gfl'])
    assert page_section(['fcos']) == proxies_section(['fcos'])
    assert page_section(['gfl'], diagnosis=True) is None
    assert page_section(['fcos', 'faster-rcnn'], tuned=True) == TUNED_SECTION


def test_a_run_of_some_proxies_is_a_section_until_a_page_run_covers_them(tmp_path):
    path = str(tmp_path / 'methods.md')
    gfl, other = proxies_section(['gfl']), proxies_section(['faster-rcnn'])
    write_page(path, '# page 1\n| fcos 1 |\n', ran_proxies=['fcos'])
    write_page(path, '## gfl 1', section=gfl)
    write_page(path, '## frcnn 1', section=other)
    write_page(path, '## gfl 2', section=gfl)
    text = (tmp_path / 'methods.md').read_text()
    assert text.startswith('# page 1\n| fcos 1 |\n')
    assert 'gfl 1' not in text and text.count(section_markers(gfl)[0]) == 1
    assert text.index('## gfl 2') < text.index('## frcnn 1')  # replaced in place
    # a page run without gfl keeps its section; one that ran gfl (and faster-rcnn) drops both
    write_page(path, '# page 2\n', ran_proxies=['fcos', 'faster-rcnn'])
    text = (tmp_path / 'methods.md').read_text()
    assert '## gfl 2' in text and 'frcnn 1' not in text and 'page 1' not in text
    write_page(path, '# page 3\n', ran_proxies=['fcos', 'faster-rcnn', 'gfl'])
    assert (tmp_path / 'methods.md').read_text() == '# page 3\n'

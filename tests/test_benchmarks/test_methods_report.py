"""The leaderboard's tables from constructed records: paired gains with their t-intervals and
ranks, Welch's intervals where the student alone ran more seeds, the difference to VkD, the
resolution arithmetic, and the per-seed CSV round trip."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_ind

from vkd_mmdet.benchmarks import (
    PROXIES,
    ROWS,
    methods_table,
    read_per_seed_csv,
    resolution_table,
    write_per_seed_csv,
)
from vkd_mmdet.benchmarks.methods_report import _difference

T_975_DF2 = 4.302653  # Student's t, 0.975 quantile, 2 degrees of freedom (printed tables)
KEYS = ('student', 'fitnet', 'cwd', 'rtk', 'vkd')
# AP per seed (x100): cwd far above the rest, rtk tied with the student alone
AP = {'student': [3.0, 3.6, 3.3], 'fitnet': [6.1, 6.5, 5.8], 'cwd': [9.0, 9.4, 9.1],
      'rtk': [3.1, 3.9, 3.1], 'vkd': [5.0, 7.0, 6.6]}
TEACHER = {'fcos': dict(AP=0.122, AP50=0.26, config='configs/demo/teacher_fcos_r18-w32.py',
                        seed=0)}


def _rows():
    return [r for r in ROWS if r.proxy == 'fcos' and r.key in KEYS]


def _records():
    rng = np.random.default_rng(0)
    return [dict(row=('fcos', key, 1.0), seed=seed, AP=ap / 100, AP50=rng.uniform(0.1, 0.2),
                 train_time=rng.uniform(50, 90), wall_time=rng.uniform(60, 100),
                 config=f'configs/demo/{key}.py')
            for seed in range(3) for key, aps in AP.items() for ap in aps[seed:seed + 1]]


def _cells(table, label):
    line = next(x for x in table.splitlines() if x.startswith(f'| {label} |'))
    return [c.strip() for c in line.split('|')[1:-1]]


def _t_interval(differences):
    d = np.asarray(differences)
    half = T_975_DF2 * d.std(ddof=1) / math.sqrt(len(d))
    return d.mean() - half, d.mean() + half


def test_gain_and_vkd_intervals_are_paired_t_intervals():
    table = methods_table(_rows(), _records(), TEACHER, PROXIES, {})
    header = next(x for x in table.splitlines() if x.startswith('| method |'))
    assert [c.strip() for c in header.split('|')[1:-1]][5:] == [
        'gain (AP)', '95 % CI', 'rank', 'gap closed', 'time', 'vs VkD (AP)', '95 % CI']
    for row in _rows():
        cells = _cells(table, row.label)
        if row.key == 'student':
            assert cells[5:7] == ['-', '-'] and cells[10:] == ['-', '-']
            continue
        gains = np.subtract(AP[row.key], AP['student'])
        low, high = _t_interval(gains)
        assert cells[5] == f'{gains.mean():+.1f} ± {gains.std(ddof=1):.1f}'
        assert cells[6] == f'[{low:+.1f}, {high:+.1f}]'
        if row.key == 'vkd':
            assert cells[10:] == ['-', '-']
        else:
            versus = np.subtract(AP[row.key], AP['vkd'])
            low, high = _t_interval(versus)
            assert cells[10:] == [f'{versus.mean():+.1f} ± {versus.std(ddof=1):.1f}',
                                  f'[{low:+.1f}, {high:+.1f}]']


def test_ranks_come_from_every_pair_compared_directly_at_a_joint_level():
    table = methods_table(_rows(), _records(), TEACHER, PROXIES, {})
    # Each row is compared with the 4 others, each comparison at 1 - 0.05 / 4 (Bonferroni: the
    # rank holds at 95 %), the paired t-interval of the same-seed differences:
    # mean ± t(0.99375; 2) sd / sqrt(3), t = 8.860 (x100, by hand from AP):
    # cwd - student [5.28, 6.46], cwd - fitnet [1.85, 4.21], cwd - rtk [4.45, 7.15],
    # cwd - vkd [-1.62, 7.55]; fitnet - student [1.27, 4.40], fitnet - rtk [1.70, 3.83],
    # fitnet - vkd [-5.29, 5.16]; vkd - student [-1.10, 6.90], vkd - rtk [-1.43, 7.09];
    # rtk - student [-1.22, 1.35]. So cwd is above all but vkd (1-2), fitnet below cwd and above
    # rtk and the student alone (2-3), vkd's spread leaves it unresolved against every row
    # (1-5), rtk and the student alone below cwd and fitnet (3-5).
    ranks = {row.key: _cells(table, row.label)[7] for row in _rows()}
    assert ranks == {'cwd': '1-2', 'fitnet': '2-3', 'vkd': '1-5', 'rtk': '3-5', 'student': '3-5'}


def test_one_seed_shows_no_interval_and_no_rank():
    records = [r for r in _records() if r['seed'] == 0]
    table = methods_table(_rows(), records, TEACHER, PROXIES, {})
    cells = _cells(table, 'FitNet')
    assert cells[5:8] == [f'{AP["fitnet"][0] - AP["student"][0]:+.1f}', '-', '-']
    assert _cells(table, 'student alone')[7] == '-'


def test_resolution_table_shows_the_sd_and_the_seeds_it_implies():
    records = _records()
    # FitNet's gains with a sample std of exactly 0.6 AP: 7 seeds for +-0.6 AP (t(0.975; 6) =
    # 2.447 over sqrt(7) = 2.646 is 0.925 <= 1; at 6 seeds 2.571 / 2.449 = 1.05).
    for record in records:
        if record['row'][1] == 'fitnet':
            record['AP'] = (AP['student'][record['seed']] + [2.4, 3.0, 3.6][record['seed']]) / 100
    table = resolution_table(_rows(), records, PROXIES)
    cells = _cells(table, 'FitNet')
    assert cells[:5] == ['FitNet', '3', '0.60', f'{T_975_DF2 * 0.6 / math.sqrt(3):.2f}', '7']
    assert _cells(table, 'VkD')[5:] == ['-', '-', '-']
    assert not any(x.startswith('| student alone |') for x in table.splitlines())
    # the largest "seeds needed" of both comparisons (columns 5 and 8 of the split line)
    needed = max(int(x.split('|')[i]) for x in table.splitlines() for i in (5, 8)
                 if x.startswith('| ') and not x.startswith('| method') and
                 x.split('|')[i].strip().isdigit())
    assert f'within ± 0.6 AP, every row on the same seeds: {needed} seeds.' in table
    assert 'Welch' not in table  # every row on the student alone's seeds: paired only


# The student alone on seeds 3-6 too (x100), beside _records' seeds 0-2 of every row.
MORE_STUDENT = [3.9, 2.8, 3.5, 4.1]


def _records_with_more_student_seeds():
    return _records() + [dict(row=('fcos', 'student', 1.0), seed=3 + i, AP=ap / 100, AP50=0.15,
                              train_time=80.0, wall_time=90.0, config='configs/demo/student.py')
                         for i, ap in enumerate(MORE_STUDENT)]


def test_a_student_alone_on_more_seeds_gets_welch_intervals_over_all_its_seeds():
    student = np.array(AP['student'] + MORE_STUDENT)
    table = methods_table(_rows(), _records_with_more_student_seeds(), TEACHER, PROXIES, {})
    assert _cells(table, 'student alone')[3] == \
        f'{student.mean():.1f} ± {student.std(ddof=1):.1f}'
    for row in _rows():
        if row.key == 'student':
            continue
        cells = _cells(table, row.label)
        ci = ttest_ind(AP[row.key], student, equal_var=False).confidence_interval(0.95)
        gain = np.mean(AP[row.key]) - student.mean()
        assert cells[5:7] == [f'{gain:+.1f}', f'[{ci.low:+.1f}, {ci.high:+.1f}]']
        assert cells[8] == f'{100 * gain / (12.2 - student.mean()):.0f} %'
        if row.key != 'vkd':  # against VkD: still paired, both rows on seeds 0-2
            low, high = _t_interval(np.subtract(AP[row.key], AP['vkd']))
            assert cells[11] == f'[{low:+.1f}, {high:+.1f}]'
    # Ranks: against the student alone Welch's intervals at 1 - 0.05 / 4 (scipy, x100): cwd
    # [5.02, 6.40], fitnet [1.67, 3.68], vkd [-1.76, 7.25], rtk [-1.50, 1.32]; between the other
    # rows paired as in the test above: the same order, vkd unresolved throughout.
    ranks = {row.key: _cells(table, row.label)[7] for row in _rows()}
    assert ranks == {'cwd': '1-2', 'fitnet': '2-3', 'vkd': '1-5', 'rtk': '3-5', 'student': '3-5'}


def test_a_rank_comparison_is_the_same_interval_either_way_round():
    records = _records_with_more_student_seeds()
    runs = {key: [r for r in records if r['row'][1] == key] for key in KEYS}
    level = 1 - 0.05 / 4
    student = np.array(AP['student'] + MORE_STUDENT)
    # over the student alone on more seeds: Welch's interval (scipy), negated the other way round
    ci = ttest_ind(AP['vkd'], student, equal_var=False).confidence_interval(level)
    low, high = _difference('vkd', 'student', runs, level)
    assert 100 * low == pytest.approx(ci.low) and 100 * high == pytest.approx(ci.high)
    assert _difference('student', 'vkd', runs, level) == (-high, -low)
    # two methods: paired on their seeds
    d = np.subtract(AP['fitnet'], AP['vkd'])
    half = student_t.ppf(1 - 0.05 / 8, 2) * d.std(ddof=1) / math.sqrt(3)
    low, high = _difference('fitnet', 'vkd', runs, level)
    assert (100 * low, 100 * high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert _difference('vkd', 'fitnet', runs, level) == (-high, -low)
    # one common seed: no interval
    runs['fitnet'] = runs['fitnet'][:1]
    assert _difference('fitnet', 'vkd', runs, level) is None


def test_a_row_with_a_seed_the_student_alone_lacks_stays_paired_on_the_common_seeds():
    records = _records() + [dict(row=('fcos', 'fitnet', 1.0), seed=3, AP=0.09, AP50=0.2,
                                 train_time=80.0, wall_time=90.0, config='fitnet.py')]
    cells = _cells(methods_table(_rows(), records, TEACHER, PROXIES, {}), 'FitNet')
    gains = np.subtract(AP['fitnet'], AP['student'])
    low, high = _t_interval(gains)
    assert cells[5:7] == [f'{gains.mean():+.1f} ± {gains.std(ddof=1):.1f}',
                          f'[{low:+.1f}, {high:+.1f}]']
    assert 'Welch' not in resolution_table(_rows(), records, PROXIES)


def test_resolution_table_shows_the_student_seeds_a_welch_interval_needs():
    student = np.array(AP['student'] + MORE_STUDENT) / 100
    table = resolution_table(_rows(), _records_with_more_student_seeds(), PROXIES)
    assert 'the student alone on 7 seeds' in table
    widest = 0.0
    for row in _rows():
        if row.key == 'student':
            continue
        cells = _cells(table, row.label)
        aps = np.array(AP[row.key]) / 100
        half = (ttest_ind(aps, student, equal_var=False).confidence_interval(0.95).high -
                ttest_ind(aps, student, equal_var=False).confidence_interval(0.95).low) / 2
        widest = max(widest, half)
        # the fewest student seeds n with a half-width <= 0.6 AP, by brute force here
        va, vb = aps.var(ddof=1) / 3, student.var(ddof=1)
        needed = next((n for n in range(2, 10001) if student_t.ppf(0.975, (
            va + vb / n) ** 2 / (va ** 2 / 2 + (vb / n) ** 2 / (n - 1))) *
            math.sqrt(va + vb / n) <= 0.006), None)
        assert cells[8:] == [f'{100 * aps.std(ddof=1):.2f}', f'{100 * half:.2f}',
                             '-' if needed is None else str(needed)]
    assert f'the widest interval ± {100 * widest:.2f} AP' in table
    # vkd's spread (sd 1.06 AP over 3 seeds) keeps its interval above 0.6 AP at any student
    # seeds: the bound is not reachable with the student alone only
    assert _cells(table, 'VkD')[10] == '-'
    assert 'not reachable with seeds of the student alone only.' in table


def test_per_seed_csv_round_trip_recomputes_the_table(tmp_path):
    records = _records()
    path = str(tmp_path / 'methods_per_seed.csv')
    write_per_seed_csv(path, records, TEACHER, _rows())
    back, teachers = read_per_seed_csv(path)
    assert teachers == {'fcos': dict(AP=0.122, AP50=0.26, config='teacher_fcos_r18-w32.py',
                                     seed=0)}
    for original, read in zip(records, back, strict=True):
        assert read['row'] == original['row'] and read['seed'] == original['seed']
        for key in ('AP', 'AP50', 'train_time', 'wall_time'):
            assert read[key] == original[key]  # exact: floats written with repr
    assert methods_table(_rows(), back, teachers, PROXIES, {}) == \
        methods_table(_rows(), records, TEACHER, PROXIES, {})
    lines = (tmp_path / 'methods_per_seed.csv').read_text().splitlines()
    assert lines[0] == 'proxy,row,label,config,factor,seed,AP,AP50,train_time,wall_time'
    assert lines[1].startswith('fcos,teacher,teacher,teacher_fcos_r18-w32.py,,0,0.122,0.26,')
    assert len(lines) == 1 + 1 + len(records)


def test_per_seed_csv_with_other_columns_is_refused(tmp_path):
    path = tmp_path / 'other.csv'
    path.write_text('proxy,row,AP\nfcos,vkd,0.1\n')
    with pytest.raises(ValueError, match='expected the columns proxy, row, label'):
        read_per_seed_csv(str(path))

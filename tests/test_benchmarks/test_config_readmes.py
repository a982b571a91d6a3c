"""The config folders' proxy-results blocks, written from per-seed files beside a page: the
numbers against intervals computed here, the rest of each README untouched."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_ind

from vkd_mmdet.benchmarks import PROXIES, ROWS, write_per_seed_csv
from vkd_mmdet.benchmarks.config_readmes import README_ROWS, write_config_readmes

TEACHERS = {'fcos': dict(AP=0.122, AP50=0.26, config='teacher_fcos.py', seed=0),
            'gfl': dict(AP=0.095, AP50=0.18, config='teacher_gfl.py', seed=0)}
# AP x100 per seed
FCOS = {'student': [3.0, 3.6, 3.3], 'fitnet': [6.1, 6.5, 5.8], 'vkd': [5.0, 7.0, 6.6]}
TUNED_FITNET = [6.4, 6.9, 6.0]
GFL = {'student': [8.0, 9.1, 7.2, 8.8, 8.5], 'crosskd': [9.6, 9.9, 9.4], 'vkd': [8.7, 9.0, 8.4]}
BEFORE, AFTER = '# Title\n\nhand-written text\n', '\n## Usage\n\nmore text\n'
MARKERS = '<!-- proxy-results:begin (keep) -->\nold numbers\n<!-- proxy-results:end -->'


def _records(proxy, aps, factors=None):
    return [dict(row=(proxy, key, (factors or {}).get(key, 1.0)), seed=seed, AP=ap / 100,
                 AP50=0.2, train_time=60.0, wall_time=70.0, config=f'{key}.py')
            for key, values in aps.items() for seed, ap in enumerate(values)]


def _t_interval(values):
    d = np.asarray(values)
    half = student_t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return f'[{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]'


@pytest.fixture()
def written(tmp_path):
    docs, configs = tmp_path / 'docs', tmp_path / 'configs'
    docs.mkdir()
    write_per_seed_csv(str(docs / 'methods_per_seed.csv'), _records('fcos', FCOS),
                       {'fcos': TEACHERS['fcos']}, ROWS)
    tuned = dict(FCOS, fitnet=TUNED_FITNET)
    write_per_seed_csv(str(docs / 'methods_tuned_per_seed.csv'),
                       _records('fcos', tuned, {'fitnet': 0.5}), {'fcos': TEACHERS['fcos']}, ROWS)
    write_per_seed_csv(str(docs / 'methods_proxies_gfl_per_seed.csv'), _records('gfl', GFL),
                       {'gfl': TEACHERS['gfl']}, ROWS)
    for folder in README_ROWS:
        (configs / folder).mkdir(parents=True)
        (configs / folder / 'README.md').write_text(BEFORE + MARKERS + AFTER)
    paths = write_config_readmes(str(configs), str(docs / 'methods.md'), ROWS, PROXIES)
    return configs, paths


def _block(configs, folder):
    text = (configs / folder / 'README.md').read_text()
    assert text.startswith(BEFORE) and text.endswith(AFTER)
    return text[len(BEFORE):-len(AFTER)]


def test_paired_rows_quote_the_pages_t_intervals_and_the_tuned_weights(written):
    configs, _ = written
    block = _block(configs, 'fitnet')
    assert block.startswith('<!-- proxy-results:begin (keep) -->\nCPU proxies ([methods.md]'
                            '(../../docs/methods.md);')
    lines = block.splitlines()[2:-1]
    assert len(lines) == 2  # the paper weights, then the tuned ones
    gains = np.subtract(FCOS['fitnet'], FCOS['student'])
    versus = np.subtract(FCOS['fitnet'], FCOS['vkd'])
    assert f'FitNet {np.mean(FCOS["fitnet"]):.1f} AP, {gains.mean():+.1f} ' \
           f'{_t_interval(gains)} AP over the student alone' in lines[0]
    assert f'{versus.mean():+.1f} {_t_interval(versus)} against the same-seed VkD run' in lines[0]
    closed = gains.mean() / (12.2 - np.mean(FCOS['student']))
    assert f'{100 * closed:.0f} % of the gap' in lines[0]
    assert 'tuned on the tune split' in lines[1] and '(x0.5 the shipped weight)' in lines[1]
    tuned_gains = np.subtract(TUNED_FITNET, FCOS['student'])
    assert f'{tuned_gains.mean():+.1f} {_t_interval(tuned_gains)}' in lines[1]


def test_a_student_alone_on_more_seeds_gives_welch_intervals(written):
    configs, _ = written
    line = _block(configs, 'crosskd').splitlines()[2]
    ci = ttest_ind(GFL['crosskd'], GFL['student'], equal_var=False).confidence_interval()
    gain = np.mean(GFL['crosskd']) - np.mean(GFL['student'])
    assert 'student alone 8.3 ± 0.7 AP over 5 seeds' in line
    assert f'CrossKD 9.6 AP, {gain:+.1f} [{ci.low:+.1f}, {ci.high:+.1f}] AP' in line


def test_folders_the_page_lacks_stay_as_they_are_and_a_readme_without_markers_is_refused(
        written, tmp_path):
    configs, paths = written
    assert (configs / 'nd' / 'README.md').read_text() == BEFORE + MARKERS + AFTER
    assert str(configs / 'nd' / 'README.md') not in paths
    assert str(configs / 'fitnet' / 'README.md') in paths
    (configs / 'cwd' / 'README.md').write_text(BEFORE + AFTER)
    with pytest.raises(ValueError, match=r'cwd/README.md: no <!-- proxy-results:begin'):
        write_config_readmes(str(configs), str(tmp_path / 'docs' / 'methods.md'), ROWS, PROXIES)

"""The measured lines of the config folders' READMEs, written from the leaderboard's per-seed
files, so that every number a ``configs/<folder>/README.md`` quotes from the CPU proxies comes
from the runs on the page (``tools/bench_methods.py --config-readmes configs``).

Each README keeps a block between ``<!-- proxy-results:begin ... -->`` and
``<!-- proxy-results:end -->``; only that block is rewritten. Its lines come from every per-seed
file beside the page (``<page>_per_seed.csv``, ``<page>_tuned_per_seed.csv``,
``<page>_proxies_<names>_per_seed.csv``): for each of the folder's rows (:data:`README_ROWS`)
and each file and proxy that ran it, its AP, its gain over the student alone with the interval,
rank and share of the gap the page shows (:func:`~vkd_mmdet.benchmarks.methods_report.
summarize_proxy`), and its paired difference to VkD.
"""
import glob
import os.path as osp
import re
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from ..utils.paired_interval import PairedInterval
from ..utils.welch_interval import WelchInterval
from .methods_report import interval_text, mean_std, summarize_proxy
from .per_seed_file import read_per_seed_csv

#: The rows each config folder quotes, its own method first.
README_ROWS: Dict[str, Tuple[str, ...]] = {
    'vkd': ('vkd',), 'fitnet': ('fitnet',), 'cwd': ('cwd',), 'pkd': ('pkd',), 'srd': ('srd',),
    'diffkd': ('diffkd',), 'rtk': ('rtk',), 'nd': ('nd',), 'kdpp': ('kdpp',), 'ld': ('ld',),
    'crosskd': ('crosskd',), 'fgd': ('fgd',), 'mgd': ('mgd',),
    'stacked': ('vkd-crosskd', 'vkd', 'crosskd'),
}
_BLOCK = re.compile(r'(<!-- proxy-results:begin[^>]*-->\n).*?(<!-- proxy-results:end -->)',
                    re.DOTALL)


def _estimate(interval: Union[PairedInterval, WelchInterval]) -> str:
    """``+5.5 [+4.9, +6.0]`` (AP x100); the mean alone where there is no interval."""
    text = f'{100 * interval.mean:+.1f}'
    return text if np.isnan(interval.low) else f'{text} {interval_text(interval)}'


def _row_lines(keys: Sequence[str], rows: Sequence, records: List[dict],
               teachers: Dict[str, dict], proxies: Dict[str, object], tuned: bool) -> List[str]:
    """One line per proxy of ``records`` that ran any of ``keys``: the setting, then each row."""
    lines = []
    for proxy in teachers:
        summaries = summarize_proxy(proxy, rows, records, teachers)
        found = [summaries[key] for key in keys if key in summaries]
        if not found or 'student' not in summaries:
            continue
        students = summaries['student'].runs
        student_text = mean_std([r['AP'] for r in students]) + ' AP'
        seeds = sorted({len(s.runs) for s in found})
        if seeds != [len(students)]:
            student_text += f' over {len(students)} seeds'
        texts = []
        for summary in found:
            text = (f'{summary.row.label} {100 * np.mean([r["AP"] for r in summary.runs]):.1f} '
                    f'AP' + (f' (x{summary.runs[0]["row"][2]:g} the shipped weight)'
                             if tuned else '') + f', {_estimate(summary.gain)}')
            text += f' AP over the student alone (rank {summary.rank} of {len(summaries)}'
            if not np.isnan(summary.closed):
                text += f', {100 * summary.closed:.0f} % of the gap'
            text += ')'
            if summary.versus_interval is not None:
                text += f', {_estimate(summary.versus_interval)} against the same-seed VkD run'
            texts.append(text)
        setting = (f'{proxies[proxy].label} ({"/".join(map(str, seeds))} seeds'
                   f'{", loss weights tuned on the tune split" if tuned else ""}; teacher '
                   f'{100 * teachers[proxy]["AP"]:.1f} AP, student alone {student_text})')
        lines.append(f'- {setting}: ' + '; '.join(texts) + '.')
    return lines


def proxy_results(folder: str, page: str, rows: Sequence, proxies: Dict[str, object],
                  link: str) -> List[str]:
    """The block's lines for config ``folder``: a header naming the page (``link``: the page as
    the README links it) and one line per row, per-seed file and proxy (empty where the page has
    none of the folder's rows)."""
    stem = osp.splitext(page)[0]
    tuned_file = stem + '_tuned_per_seed.csv'
    # the page's own runs, then its tuned weights, then its sections' proxies
    files = sorted(glob.glob(glob.escape(stem) + '*_per_seed.csv'),
                   key=lambda p: (p != stem + '_per_seed.csv', p != tuned_file, p))
    lines = []
    for path in files:
        records, teachers = read_per_seed_csv(path)
        lines += _row_lines(README_ROWS[folder], rows, records, teachers, proxies,
                            tuned=path == tuned_file)
    if not lines:
        return []
    return [f'CPU proxies ([{osp.basename(page)}]({link}); synthetic data: a pipeline check, not '
            'a COCO result): AP, the gain over the student alone with its 95 % interval, the '
            'rank among the proxy\'s rows and the share of the teacher-student gap the page '
            'shows, and the paired difference to VkD:', *lines]


def write_config_readmes(configs: str, page: str, rows: Sequence,
                         proxies: Dict[str, object]) -> List[str]:
    """Rewrite the proxy-results block of ``<configs>/<folder>/README.md`` for every folder of
    :data:`README_ROWS` from the per-seed files beside ``page``; returns the READMEs written.
    Folders whose rows the page lacks are left as they are."""
    written = []
    for folder in README_ROWS:
        path = osp.join(configs, folder, 'README.md')
        with open(path) as f:
            text = f.read()
        match = _BLOCK.search(text)
        if not match:
            raise ValueError(f'{path}: no <!-- proxy-results:begin --> ... '
                             '<!-- proxy-results:end --> block to write the leaderboard into')
        link = osp.relpath(page, osp.dirname(path))
        lines = proxy_results(folder, page, rows, proxies, link)
        if not lines:
            continue
        new = text[:match.end(1)] + '\n'.join(lines) + '\n' + text[match.start(2):]
        if new != text:
            with open(path, 'w') as f:
                f.write(new)
            written.append(path)
    return written

"""The leaderboard's markdown page (``docs/methods.md``): the setting, the command, the tables, and
the sections that the paper-weights run keeps (tuned weights, proxies run on their own)."""
import argparse
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .rows import PAGE_PROXIES, PROXIES, ROWS
from .seed_ranges import format_seed_ranges

#: The tuned-weights run's section of the page (``--weights-from``).
TUNED_SECTION = 'tuned-weights'
_PROXIES_PREFIX = 'proxies_'
_SECTION = re.compile(r'<!-- ([\w-]+):begin -->.*?<!-- \1:end -->\n?', re.DOTALL)


def section_markers(name: str) -> Tuple[str, str]:
    """The HTML comments that delimit the page's section ``name``."""
    return f'<!-- {name}:begin -->', f'<!-- {name}:end -->'


def proxies_section(proxies: Sequence[str]) -> str:
    """The section name of a paper-weights run of only some proxies (``--proxies``)."""
    return _PROXIES_PREFIX + '_'.join(sorted(set(proxies)))


def page_section(proxies: Sequence[str], tuned: bool = False,
                 diagnosis: bool = False) -> Optional[str]:
    """The section of the page a run writes: ``None`` (the page itself) for a run that covers
    :data:`~vkd_mmdet.benchmarks.rows.PAGE_PROXIES` or the diagnosis, :data:`TUNED_SECTION` for
    the tuned-weights run, else :func:`proxies_section` of the proxies it ran."""
    if tuned:
        return TUNED_SECTION
    if diagnosis or set(proxies) >= set(PAGE_PROXIES):
        return None
    return proxies_section(proxies)


def write_page(path: str, text: str, section: Optional[str] = None,
               ran_proxies: Sequence[str] = ()) -> None:
    """Write the page at ``path``.

    A section run (``section``: :data:`TUNED_SECTION`, or :func:`proxies_section` for a run of
    some proxies only) replaces only its own section of the page, or appends it. The
    paper-weights run of the page rewrites it and keeps every section but those of proxies it
    ran itself (``ran_proxies``): their tables are now in the page.
    """
    old = ''
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
    sections = {m.group(1): m.group(0).rstrip('\n') for m in _SECTION.finditer(old)}
    if section:
        begin, end = section_markers(section)
        new = f'{begin}\n{text.rstrip()}\n{end}'
        text = old.replace(sections[section], new) if section in sections else \
            (old.rstrip('\n') + '\n\n' if old.strip() else '') + new + '\n'
    else:
        kept = [body for name, body in sections.items() if not (
            name.startswith(_PROXIES_PREFIX) and
            set(name[len(_PROXIES_PREFIX):].split('_')) <= set(ran_proxies))]
        text = '\n\n'.join([text.rstrip('\n'), *kept]) + '\n'
    with open(path, 'w') as f:
        f.write(text)


def run_minutes(records: Sequence[dict], jobs: int) -> str:
    """What training ``records`` from scratch costs: each row's runs at the median wall time of
    the row (a run paused or slowed by other work on the machine does not count; reused runs
    count with the time they took), and that shared among ``jobs`` parallel runs; and where it
    goes: training iterations (data loading included) against the rest of a run (start-up,
    checkpoint, final evaluation); runs evaluated again on another val set: what that took."""
    by_row: Dict[tuple, List[dict]] = {}
    for record in records:
        by_row.setdefault(tuple(record['row']), []).append(record)
    total = sum(len(runs) * float(np.median([r['wall_time'] for r in runs]))
                for runs in by_row.values()) / 60
    iterations = sum(len(runs) * float(np.median([r['train_time'] for r in runs]))
                     for runs in by_row.values()) / 60
    text = (f'{len(records)} runs, {total:.0f} run-minutes (about {total / jobs:.0f} min at '
            f'{jobs} in parallel; {100 * iterations / total:.0f} % in training iterations, the '
            f'rest start-up, checkpoint and evaluation')
    evaluated = [r['eval_time'] for r in records if 'eval_time' in r]
    if evaluated:
        text += (f'; {len(evaluated)} runs evaluated again on this val set, '
                 f'{float(np.median(evaluated)):.0f} s each')
    return text + ')'


def tuned_section(args: argparse.Namespace, command: str, table: str,
                  records: Sequence[dict], per_seed: str) -> str:
    """The page's tuned-weights section: the sweep (its command, its table) and the table of the
    best factors on the val split (``command``: the invocation that ran it; ``per_seed``: the
    name of its per-seed file beside the page)."""
    with open(args.weights_from) as f:
        sweep = json.load(f)
    sweep_md = osp.join(osp.dirname(args.weights_from), 'sweep.md')
    with open(sweep_md) as f:
        sweep_text = f.read()
    factors = ', '.join(f'{x:g}' for x in sorted({r['row'][2] for r in sweep['runs']
                                                   if r['row'][1] != 'student'}))
    return (f'## Tuned loss weights\n\n'
            f'Tuned on the tune split, never on val: {100 * args.tune_fraction:.0f} % of the '
            f'training images held out (seeded) as its evaluation set, the student trained on '
            f'the rest; each method\'s loss weights scaled by {factors}'
            f' (the same budget for every method), seed 0, '
            f'{run_minutes(sweep["runs"], args.jobs)}:\n\n'
            f'    {sweep.get("command", "python tools/bench_methods.py --sweep-weights")}\n\n'
            f'{sweep_text}\n'
            f'Each method at its best factor (a factor of 1 reuses the paper-weights run), on '
            f'the val split, seeds {args.seeds}, {run_minutes(records, args.jobs)} (per seed: '
            f'[{per_seed}]({per_seed})):\n\n'
            f'    {command}\n\n{table}')


def page(args: argparse.Namespace, command: str, table: str, teachers: dict,
         wall_time: float, records: Sequence[dict], per_seed: str,
         title: Optional[str] = None) -> str:
    """The markdown page: setting, command, table (``per_seed``: the name of the per-seed file
    beside the page); a run of some proxies only gives its section a ``title`` of its own."""
    load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
    teacher_text = '; '.join(f'{PROXIES[p].label}: teacher {100 * t["AP"]:.1f} AP '
                             f'({t["settings"]["iters"]} iterations, seed 0)'
                             for p, t in teachers.items())
    # the page itself is `make bench-methods`; a section says its own command only
    written_by = '' if title else ' (`make bench-methods`)'
    title = title or '# Which method works: distillation methods on the CPU demo proxies'
    paired_text = ('the Student-t interval of the mean paired difference, mean ± t(0.975; '
                   'n - 1) × sd / √n over n seeds')
    more = {key: [s for s in seeds if s not in args.seeds]
            for key, seeds in (args.row_seeds or {}).items()}
    labels = {r.key: r.label for r in ROWS if r.proxy in teachers}
    gain_text = (
        'gain: AP minus the same-seed student alone (a paired difference), mean ± sample std; '
        f'95 % CI: {paired_text}' if not any(more.values()) else
        'more seeds for some rows: ' + '; '.join(
            f'{label} {format_seed_ranges(more[key])}'
            for key, label in labels.items() if more.get(key)) +
        ' (the student alone is in every gain: where its spread dominates the '
        'paired gains, its seeds narrow every interval over it; rows whose differences spread '
        'more than the others\' get seeds of their own; the resolution table below shows the '
        'arithmetic); gain over the student alone, where the row ran every seed of the student '
        'alone: AP minus the same-seed student alone, mean ± sample std, 95 % CI: '
        f'{paired_text}; where the student alone ran seeds the row did not: mean AP minus the '
        'student alone\'s mean AP over all its seeds (the mean alone), 95 % CI: Welch\'s '
        't-interval of that difference (each side\'s sample variance over its own seeds, '
        'Welch-Satterthwaite degrees of freedom; `scipy.stats.ttest_ind(..., '
        'equal_var=False)`), not paired: it leaves out the covariance of same-seed runs, '
        'conservative where that is positive, not where negative')
    return (f'{title}\n\n'
            f'Written by `tools/bench_methods.py`{written_by}:\n\n'
            f'    {command}\n\n'
            f'Data: the demo\'s synthetic shapes set ({args.num_train} train / {args.num_val} val '
            f'images, sides {args.image_size[0]}-{args.image_size[1]} px, 1-{args.max_objects} '
            f'shapes of {args.object_size[0]:g}-{args.object_size[1]:g} of the shorter side). '
            f'{teacher_text}. Every student run: {args.student_iters} iterations (AdamW, warm-up '
            f'+ cosine), the same seed and data order for every row of a seed; seeds '
            f'{args.seeds}. AP: COCO box AP (mmdet `CocoMetric`) on the val split, x100, mean ± '
            f'sample std over seeds; {gain_text}; rank: each row compared directly with every '
            f'other row of its proxy (two methods: the paired t-interval of their same-seed AP '
            f'differences; a method and the student alone: the gain\'s interval), each '
            f'comparison at 1 - 0.05 / (rows - 1) so that the row\'s rank holds at 95 % over '
            f'all of its comparisons (Bonferroni), from 1 + the rows shown better to the number '
            f'of rows minus those shown worse, a range where comparisons do not resolve (tied: '
            f'the data cannot order them); each comparison is therefore wider than the 95 % '
            f'columns: a gain clear of 0 there can still rank tied with the student alone; vs '
            f'VkD: AP minus the same-seed VkD run, with its paired 95 % t-interval over their '
            f'common seeds; gap closed: '
            f'mean gain / (teacher AP - mean student AP); time: training iterations (data '
            f'loading included, validation excluded), the fastest run of the row relative to '
            f'the fastest student alone of the same proxy (the least contended runs; wall time '
            f'still depends on what else the machine ran: `make bench` measures the cost of a '
            f'distillation step under control). '
            f'{args.jobs} runs in parallel, {args.threads} torch thread(s) each, '
            f'{os.cpu_count()} CPU(s) seen, load average at the end {load}. This invocation: '
            f'{wall_time / 60:.1f} min (reused runs and cached teachers not re-trained); the '
            f'table from scratch, teachers aside: {run_minutes(records, args.jobs)}. Every run\'s '
            f'numbers: [{per_seed}]({per_seed}) (CSV; recompute the tables with '
            f'`vkd_mmdet.benchmarks.read_per_seed_csv` and `methods_table`).\n\n'
            f'What the ranks mean, VkD\'s diagnosis, what was tried to make the proxies rank '
            f'(validation images, seeds, schedule, teacher) and the methods that do not beat the '
            f'student alone (RTK, ND, KD++: what was checked): '
            f'[vkd_diagnosis.md](vkd_diagnosis.md).\n\n'
            f'{table}')

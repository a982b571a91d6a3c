"""The leaderboard's per-seed numbers as CSV, beside its page: every run and every teacher, one
line each, at full precision, so that anyone can recompute the tables (and their intervals).

Columns: ``proxy``, ``row`` (the row key; ``teacher`` for a proxy's teacher), ``label``,
``config``, ``factor`` (the loss-weight factor; empty for a teacher), ``seed``, ``AP``, ``AP50``
(COCO box AP on the split the page reports, fractions, not x100), ``train_time`` and
``wall_time`` (seconds).
"""
import csv
import os.path as osp
from typing import Dict, List, Sequence, Tuple

FIELDS = ('proxy', 'row', 'label', 'config', 'factor', 'seed', 'AP', 'AP50', 'train_time',
          'wall_time')
_FLOATS = ('AP', 'AP50', 'train_time', 'wall_time')


def write_per_seed_csv(path: str, records: Sequence[dict], teachers: Dict[str, dict],
                       rows: Sequence) -> None:
    """Write the teachers' and the runs' numbers (``records``: each with ``row``, ``(proxy,
    key, factor)``) to ``path``; ``rows`` (:class:`~vkd_mmdet.benchmarks.rows.Row`) give the
    labels. Floats are written with ``repr``: reading them back gives the same numbers."""
    labels = {(r.proxy, r.key): r.label for r in rows}
    lines = [dict(proxy=proxy, row='teacher', label='teacher',
                  config=osp.basename(teacher['config']), factor='', seed=teacher.get('seed', 0),
                  **{k: repr(float(teacher[k])) for k in _FLOATS if k in teacher})
             for proxy, teacher in teachers.items()]
    for record in records:
        proxy, key, factor = record['row']
        lines.append(dict(proxy=proxy, row=key, label=labels.get((proxy, key), key),
                          config=osp.basename(record['config']), factor=repr(float(factor)),
                          seed=record['seed'],
                          **{k: repr(float(record[k])) for k in _FLOATS if k in record}))
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(lines)


def read_per_seed_csv(path: str) -> Tuple[List[dict], Dict[str, dict]]:
    """The runs' records (``row``, ``config``, ``seed`` and the numbers) and the teachers
    (``{proxy: {'AP': ..., 'AP50': ...}}``) of a file :func:`write_per_seed_csv` wrote: the
    input of :func:`~vkd_mmdet.benchmarks.methods_report.methods_table`."""
    records, teachers = [], {}
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f'{path}: expected the columns {", ".join(FIELDS)}; got '
                             f'{reader.fieldnames}')
        for line in reader:
            numbers = {k: float(line[k]) for k in _FLOATS if line[k] != ''}
            if line['row'] == 'teacher':
                teachers[line['proxy']] = dict(numbers, config=line['config'],
                                               seed=int(line['seed']))
            else:
                records.append(dict(numbers, row=(line['proxy'], line['row'],
                                                  float(line['factor'])),
                                    config=line['config'], seed=int(line['seed'])))
    return records, teachers

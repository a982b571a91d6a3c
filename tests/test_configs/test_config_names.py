"""No two shipped configs share a basename: mmdet's tools/train.py puts each run in
./work_dirs/<basename>, so two same-named configs would resume from each other's checkpoints."""
import collections
import glob
import os.path as osp

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')


def test_config_basenames_are_unique():
    paths = glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
    by_name = collections.defaultdict(list)
    for path in paths:
        by_name[osp.basename(path)].append(osp.relpath(path, CONFIGS))
    assert len(paths) > 20  # the glob found the shipped configs
    assert {name: where for name, where in by_name.items() if len(where) > 1} == {}


def test_the_documented_vkd_command_keeps_its_name():
    assert osp.isfile(osp.join(CONFIGS, 'vkd', 'faster_rcnn_r101_r18.py'))

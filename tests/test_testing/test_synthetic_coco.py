import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO

from vkd_mmdet.testing import CLASSES, draw_image, make_synthetic_coco

TINY = dict(num_train=6, num_val=3, image_size=(48, 64), max_objects=4)


def test_layout_and_coco_validity(tmp_path):
    ann_files = make_synthetic_coco(str(tmp_path), **TINY)
    assert set(ann_files) == {'train', 'val'}
    for split, count in (('train', 6), ('val', 3)):
        coco = COCO(ann_files[split])
        assert len(coco.getImgIds()) == count
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        for img in coco.loadImgs(coco.getImgIds()):
            pixels = np.asarray(_open(tmp_path / split / img['file_name']))
            assert pixels.shape == (img['height'], img['width'], 3)
            assert 48 <= img['height'] <= 64 and 48 <= img['width'] <= 64
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            assert 1 <= len(anns) <= 4
            for ann in anns:
                x, y, w, h = ann['bbox']
                assert x >= 0 and y >= 0 and w >= 1 and h >= 1
                assert x + w <= img['width'] and y + h <= img['height']
                assert 0 < ann['area'] <= w * h
                assert ann['iscrowd'] == 0


def test_deterministic_and_independent_of_counts(tmp_path):
    make_synthetic_coco(str(tmp_path / 'a'), **TINY, seed=3)
    make_synthetic_coco(str(tmp_path / 'b'), **dict(TINY, num_train=2), seed=3)
    make_synthetic_coco(str(tmp_path / 'c'), **TINY, seed=4)
    for name in ('000000.png', '000001.png'):
        assert filecmp.cmp(tmp_path / 'a' / 'train' / name, tmp_path / 'b' / 'train' / name,
                           shallow=False)
        assert not filecmp.cmp(tmp_path / 'a' / 'train' / name,
                               tmp_path / 'c' / 'train' / name, shallow=False)
    val_a, val_b = (json.loads((tmp_path / d / 'annotations' / 'instances_val.json').read_text())
                    for d in 'ab')
    assert val_a['annotations'] == val_b['annotations'] and val_a['images'] == val_b['images']


def test_cached_unless_arguments_change(tmp_path):
    ann = make_synthetic_coco(str(tmp_path), **TINY)['train']
    os.utime(ann, (0, 0))
    make_synthetic_coco(str(tmp_path), **TINY)
    assert osp.getmtime(ann) == 0  # same arguments: reused
    make_synthetic_coco(str(tmp_path), **dict(TINY, max_objects=2))
    assert osp.getmtime(ann) > 0  # different arguments: rewritten


@pytest.mark.parametrize('max_occlusion', [0.0, 0.5])
def test_objects_are_disjoint_tight_and_not_hidden(max_occlusion):
    image, objects = draw_image(np.random.default_rng(7), (96, 96), 6,
                                max_occlusion=max_occlusion)
    assert image.shape[2] == 3 and image.dtype == np.uint8
    assert objects
    covered = np.zeros(image.shape[:2], dtype=int)
    for obj in objects:
        mask = obj['mask']
        covered += mask
        rows, cols = np.where(mask.any(axis=1))[0], np.where(mask.any(axis=0))[0]
        assert obj['bbox'] == [cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]
        assert obj['area'] == mask.sum() > 0
        assert 0 <= obj['label'] < len(CLASSES)
    assert covered.max() == 1  # visible masks partition the covered pixels


@pytest.mark.parametrize('kwargs, key', [
    (dict(num_train=0), 'num_train'),
    (dict(image_size=(16, 64)), 'image_size'),
    (dict(image_size=(96, 64)), 'image_size'),
    (dict(max_objects=0), 'max_objects'),
    (dict(object_size=(0.5, 0.1)), 'object_size'),
    (dict(max_occlusion=1.0), 'max_occlusion'),
])
def test_bad_arguments_name_the_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=key):
        make_synthetic_coco(str(tmp_path), **kwargs)


def test_mmdet_coco_dataset_reads_it(tmp_path):
    from mmdet.datasets import CocoDataset
    make_synthetic_coco(str(tmp_path), **TINY)
    dataset = CocoDataset(data_root=str(tmp_path), ann_file='annotations/instances_train.json',
                          data_prefix=dict(img='train/'), metainfo=dict(classes=CLASSES),
                          pipeline=[], filter_cfg=None)
    assert len(dataset) == 6
    info = dataset[0]
    assert osp.isfile(info['img_path'])
    assert all(0 <= inst['bbox_label'] < len(CLASSES) for inst in info['instances'])


def _open(path):
    from PIL import Image
    return Image.open(path)

"""What identifies a run's training and evaluation set: the annotations, not the generator's
arguments."""
import json

from vkd_mmdet.benchmarks.data_splits import annotation_digest, split_digests
from vkd_mmdet.testing import make_synthetic_coco


def _coco(path, info, boxes):
    path.write_text(json.dumps(dict(
        info=info, images=[dict(id=1, file_name='a.png', height=8, width=8)],
        annotations=[dict(id=i + 1, image_id=1, category_id=1, bbox=b, area=4, iscrowd=0)
                     for i, b in enumerate(boxes)],
        categories=[dict(id=1, name='rectangle')])))
    return str(path)


def test_digest_follows_the_annotations_not_the_info(tmp_path):
    one = _coco(tmp_path / 'one.json', {'params': {'num_val': 200}}, [[0, 0, 2, 2]])
    same = _coco(tmp_path / 'same.json', {'params': {'num_val': 1000}}, [[0, 0, 2, 2]])
    moved = _coco(tmp_path / 'moved.json', {'params': {'num_val': 200}}, [[1, 0, 2, 2]])
    assert annotation_digest(one) == annotation_digest(same)
    assert annotation_digest(one) != annotation_digest(moved)


def test_more_validation_images_keep_the_training_set(tmp_path):
    make_synthetic_coco(str(tmp_path / 'a'), num_train=3, num_val=2, image_size=(32, 40))
    make_synthetic_coco(str(tmp_path / 'b'), num_train=3, num_val=4, image_size=(32, 40))
    (train_a, val_a), (train_b, val_b) = (split_digests(str(tmp_path / d)) for d in 'ab')
    assert train_a == train_b
    assert val_a != val_b

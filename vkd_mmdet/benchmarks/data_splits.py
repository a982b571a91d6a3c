"""The demo's synthetic data set: its generator arguments and the splits the runs train and
evaluate on (``val``: reported; ``tune``: held-out training images for choosing loss weights)."""
import argparse
import copy
import hashlib
import json
import os.path as osp
from typing import Optional, Tuple

import numpy as np

# Annotation file and image folder of the training and the evaluation set of each data split:
# 'val' is the reported one; 'tune' holds out part of the training images (make_tune_split) and
# is never reported.
SPLITS = {
    'val': (('annotations/instances_train.json', 'train/'),
            ('annotations/instances_val.json', 'val/')),
    'tune': (('annotations/instances_tune-train.json', 'train/'),
             ('annotations/instances_tune-val.json', 'train/')),
}


def add_data_args(parser: argparse.ArgumentParser, num_val: int = 200) -> None:
    """The synthetic set's arguments (``make_synthetic_coco``), shared by ``tools/run_demo.py``
    and ``tools/bench_methods.py`` (which evaluates on more images: ``num_val``)."""
    parser.add_argument('--num-train', type=int, default=800, help='training images')
    parser.add_argument('--num-val', type=int, default=num_val, help='validation images')
    parser.add_argument('--image-size', type=int, nargs=2, default=(96, 128),
                        metavar=('MIN', 'MAX'), help='generated image side range')
    parser.add_argument('--max-objects', type=int, default=4, help='objects per image, at most')
    parser.add_argument('--object-size', type=float, nargs=2, default=(0.25, 0.6),
                        metavar=('MIN', 'MAX'),
                        help='object extent range, fraction of the shorter image side')


def data_kwargs(args: argparse.Namespace) -> dict:
    """``make_synthetic_coco``'s keyword arguments from the options of :func:`add_data_args`."""
    return dict(num_train=args.num_train, num_val=args.num_val,
                image_size=list(args.image_size), max_objects=args.max_objects,
                object_size=list(args.object_size))


def annotation_digest(ann_file: str) -> str:
    """What a COCO annotation file holds (its images, boxes and classes), as a short hash.

    The file's ``info`` is left out: it records every argument the generator was called with,
    and the training images do not change with the number of validation images (each image is
    drawn from its own seed), so a run trained on them stays valid when only the validation set
    grows.
    """
    with open(ann_file) as f:
        coco = json.load(f)
    content = json.dumps([coco[k] for k in ('images', 'annotations', 'categories')],
                         sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def split_digests(data_root: str, split: str = 'val') -> Tuple[str, str]:
    """:func:`annotation_digest` of the training and of the evaluation set of ``split``: what a
    run was trained on (part of what makes it reusable) and what its AP was measured on (a run
    measured on another set is evaluated again, not trained again)."""
    return tuple(annotation_digest(osp.join(data_root, ann)) for ann, _ in SPLITS[split])


def with_data_root(cfg_options: Optional[dict], data_root: str, split: str = 'val') -> dict:
    """Point every dataloader and the evaluator at ``data_root`` and the files of ``split``."""
    options = copy.deepcopy(cfg_options or {})
    (train_ann, train_img), (val_ann, val_img) = SPLITS[split]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.dataset.data_root'] = data_root
    if split != 'val':
        options['train_dataloader.dataset.ann_file'] = train_ann
        options['train_dataloader.dataset.data_prefix.img'] = train_img
        for loader in ('val_dataloader', 'test_dataloader'):
            options[f'{loader}.dataset.ann_file'] = val_ann
            options[f'{loader}.dataset.data_prefix.img'] = val_img
    for evaluator in ('val_evaluator', 'test_evaluator'):
        options[f'{evaluator}.ann_file'] = data_root + val_ann
    return options


def make_tune_split(data_root: str, fraction: float, seed: int = 0) -> None:
    """Hold out ``fraction`` of the training images (seeded) as the tune split's evaluation set:
    ``instances_tune-val.json``; the rest is ``instances_tune-train.json``. Images stay in
    ``train/``; the val split is untouched."""
    with open(osp.join(data_root, 'annotations', 'instances_train.json')) as f:
        coco = json.load(f)
    ids = [image['id'] for image in coco['images']]
    held_out = set(np.random.default_rng(seed).permutation(ids)[:round(fraction * len(ids))]
                   .tolist())
    if not 0 < len(held_out) < len(ids):
        raise ValueError(f'--tune-fraction {fraction}: holds out {len(held_out)} of {len(ids)} '
                         'training images; expected at least one and not all')
    for name, keep in (('tune-train', lambda i: i not in held_out),
                       ('tune-val', held_out.__contains__)):
        part = dict(coco, images=[im for im in coco['images'] if keep(im['id'])],
                    annotations=[a for a in coco['annotations'] if keep(a['image_id'])])
        with open(osp.join(data_root, 'annotations', f'instances_{name}.json'), 'w') as f:
            json.dump(part, f)

"""A seeded, COCO-format detection set of drawn shapes: a stand-in for COCO on a laptop CPU.

Every image gets a textured background (colour gradient + smoothed noise + stripes), unlabelled
clutter (lines and arcs), and 1..``max_objects`` filled shapes of :data:`CLASSES` with random
size (log-uniform), rotation, colour and texture. Shapes may overlap; a placement that would hide
more than ``max_occlusion`` of an already drawn shape is retried, so every drawn shape is
annotated. Boxes are those of the *visible* pixels (the COCO convention), ``area`` their count.

Each image depends only on ``(seed, split, index)``: changing ``num_train`` never changes the
images that are kept, and the same call writes byte-identical files.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import draw

#: Category names, in category-id order (ids start at 1, as in COCO).
CLASSES: Tuple[str, ...] = ('rectangle', 'ellipse', 'triangle', 'star', 'cross')

_SPLIT_IDS = {'train': 0, 'val': 1}


def make_synthetic_coco(out_dir: str,
                        num_train: int = 800,
                        num_val: int = 200,
                        image_size: Tuple[int, int] = (128, 192),
                        max_objects: int = 6,
                        object_size: Tuple[float, float] = (0.08, 0.5),
                        max_occlusion: float = 0.5,
                        seed: int = 0,
                        overwrite: bool = False,
                        progress: bool = False) -> Dict[str, str]:
    """Write a COCO-format detection set of shapes under ``out_dir``.

    Layout: ``out_dir/{train,val}/NNNNNN.png`` and
    ``out_dir/annotations/instances_{train,val}.json`` (categories :data:`CLASSES`, ids from 1).
    When both annotation files exist and were written with the same arguments, nothing is
    redone (a second ``make demo`` is free) unless ``overwrite``.

    Args:
        out_dir (str): output folder (created).
        num_train (int): training images. Defaults to 800.
        num_val (int): validation images. Defaults to 200.
        image_size (tuple[int, int]): (min, max) side length in pixels; height and width are
            drawn independently and uniformly in this range. Defaults to (128, 192).
        max_objects (int): objects per image are uniform in ``1..max_objects``. Defaults to 6.
        object_size (tuple[float, float]): (min, max) object extent as a fraction of the
            image's shorter side, log-uniform. Defaults to (0.08, 0.5).
        max_occlusion (float): largest fraction of a drawn shape later shapes may hide.
            Defaults to 0.5.
        seed (int): the data set's seed. Defaults to 0.
        overwrite (bool): regenerate even when a matching set exists. Defaults to False.
        progress (bool): show a tqdm progress bar. Defaults to False.

    Returns:
        dict[str, str]: split name -> path of its annotation file.

    Example:
        >>> from vkd_mmdet.testing import make_synthetic_coco
        >>> ann_files = make_synthetic_coco('data/synthetic_coco', num_train=8, num_val=4)
        >>> sorted(ann_files)
        ['train', 'val']
    """
    _check_args(num_train, num_val, image_size, max_objects, object_size, max_occlusion)
    params = dict(num_train=num_train, num_val=num_val, image_size=list(image_size),
                  max_objects=max_objects, object_size=list(object_size),
                  max_occlusion=max_occlusion, seed=seed, classes=list(CLASSES))
    ann_files = {split: osp.join(out_dir, 'annotations', f'instances_{split}.json')
                 for split in _SPLIT_IDS}
    if not overwrite and all(_written_with(path, params) for path in ann_files.values()):
        return ann_files
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        indices = range(count)
        if progress:
            from tqdm import tqdm
            indices = tqdm(indices, desc=f'synthetic_coco/{split}', unit='img')
        for index in indices:
            rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
            image, objects = draw_image(rng, image_size, max_objects, object_size,
                                        max_occlusion)
            file_name = f'{index:06d}.png'
            Image.fromarray(image).save(osp.join(out_dir, split, file_name))
            images.append(dict(id=index + 1, file_name=file_name,
                               height=image.shape[0], width=image.shape[1]))
            for obj in objects:
                annotations.append(dict(id=len(annotations) + 1, image_id=index + 1,
                                        category_id=obj['label'] + 1, bbox=obj['bbox'],
                                        area=obj['area'], iscrowd=0))
        coco = dict(info=dict(description='vkd_mmdet synthetic shapes', params=params),
                    images=images, annotations=annotations,
                    categories=[dict(id=i + 1, name=name, supercategory='shape')
                                for i, name in enumerate(CLASSES)])
        with open(ann_files[split], 'w') as f:
            json.dump(coco, f)
    return ann_files


def draw_image(rng: np.random.Generator,
               image_size: Tuple[int, int] = (128, 192),
               max_objects: int = 6,
               object_size: Tuple[float, float] = (0.08, 0.5),
               max_occlusion: float = 0.5,
               max_tries: int = 20) -> Tuple[np.ndarray, List[dict]]:
    """One ``(H, W, 3)`` uint8 image and its objects, each a dict with ``label`` (index into
    :data:`CLASSES`), ``bbox`` (``[x, y, w, h]`` of the visible pixels), ``area`` (their count)
    and ``mask`` (``(H, W)`` bool, the visible pixels).

    Arguments as in :func:`make_synthetic_coco`; ``max_tries`` placements are tried per shape
    before it is left out.
    """
    height, width = (int(v) for v in rng.integers(image_size[0], image_size[1] + 1, size=2))
    image = _background(rng, height, width)
    _clutter(rng, image)
    owner = np.full((height, width), -1, dtype=np.int64)  # index of the shape seen at a pixel
    full_areas: List[int] = []
    labels: List[int] = []
    short = min(height, width)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = int(rng.integers(len(CLASSES)))
        for _ in range(max_tries):
            extent = short * np.exp(rng.uniform(*np.log(object_size)))
            mask = _shape_mask(rng, CLASSES[label], extent, height, width)
            if mask.sum() < 12:
                continue
            hidden = np.bincount(owner[mask & (owner >= 0)], minlength=len(labels))
            visible = np.bincount(owner[owner >= 0], minlength=len(labels)) - hidden
            if len(labels) and np.any(visible < (1 - max_occlusion) * np.array(full_areas)):
                continue
            owner[mask] = len(labels)
            full_areas.append(int(mask.sum()))
            labels.append(label)
            _paint(rng, image, mask)
            break
    image = image + rng.normal(0, 6, size=image.shape)  # sensor noise over everything
    objects = []
    for index, label in enumerate(labels):
        mask = owner == index
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]
        objects.append(dict(label=label, bbox=bbox, area=int(len(xs)), mask=mask))
    return np.clip(image, 0, 255).astype(np.uint8), objects


def _check_args(num_train: int, num_val: int, image_size: Sequence[int], max_objects: int,
                object_size: Sequence[float], max_occlusion: float) -> None:
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train={num_train}, num_val={num_val}: expected at least 1 each')
    if len(image_size) != 2 or not 32 <= image_size[0] <= image_size[1]:
        raise ValueError(f'image_size={tuple(image_size)}: expected (min, max) with '
                         '32 <= min <= max')
    if max_objects < 1:
        raise ValueError(f'max_objects={max_objects}: expected >= 1')
    if len(object_size) != 2 or not 0 < object_size[0] <= object_size[1] <= 1:
        raise ValueError(f'object_size={tuple(object_size)}: expected (min, max) fractions of '
                         'the shorter side with 0 < min <= max <= 1')
    if not 0 <= max_occlusion < 1:
        raise ValueError(f'max_occlusion={max_occlusion}: expected a fraction in [0, 1)')


def _written_with(ann_file: str, params: dict) -> bool:
    if not osp.isfile(ann_file):
        return False
    with open(ann_file) as f:
        info = json.load(f).get('info', {})
    return info.get('params') == params


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Gradient between two colours + smoothed colour noise + faint stripes, float (H, W, 3)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    start, end = rng.uniform(30, 225, size=(2, 3))
    image = start + ramp[..., None] * (end - start)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, size=(height, width, 3)),
                                    sigma=(rng.uniform(1, 4), rng.uniform(1, 4), 0))
    image += noise / max(noise.std(), 1e-6) * rng.uniform(5, 25)
    period = rng.uniform(6, 24)
    stripe_angle = rng.uniform(0, np.pi)
    stripes = np.sin(2 * np.pi * (np.cos(stripe_angle) * xx + np.sin(stripe_angle) * yy) / period)
    return image + stripes[..., None] * rng.uniform(0, 15)


def _clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    """Unlabelled thin lines and arcs: edges that are not objects."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(0, 5))):
        color = rng.uniform(0, 255, size=3)
        if rng.random() < 0.5:
            rr, cc = draw.line(*(int(v) for v in rng.integers(0, (height, width, height, width))))
        else:
            rr, cc = draw.circle_perimeter(int(rng.integers(height)), int(rng.integers(width)),
                                           int(rng.integers(4, max(5, min(height, width) // 3))),
                                           shape=(height, width))
        image[rr, cc] = color


def _shape_mask(rng: np.random.Generator, name: str, extent: float, height: int,
                width: int) -> np.ndarray:
    """Boolean (H, W) mask of one shape of about ``extent`` pixels across, rotated and placed
    at random (it may be cut by the image border)."""
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    theta = rng.uniform(0, 2 * np.pi)
    r = extent / 2
    if name == 'ellipse':
        ratio = rng.uniform(0.35, 0.7)  # never round: a disk would have no orientation
        rr, cc = draw.ellipse(cy, cx, r, r * ratio, shape=(height, width), rotation=theta)
        mask = np.zeros((height, width), dtype=bool)
        mask[rr, cc] = True
        return mask
    if name == 'rectangle':
        aspect = rng.uniform(0.4, 1.0)
        pts = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]]) * r
    elif name == 'triangle':
        angles = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.normal(0, 0.2, size=3)
        pts = np.stack([np.cos(angles), np.sin(angles)], axis=1) * r
    elif name == 'star':
        angles = np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.35, 0.5))
        pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    elif name == 'cross':
        t = rng.uniform(0.25, 0.4)
        pts = np.array([[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1],
                        [-t, t], [-1, t], [-1, -t], [-t, -t]]) * r
    else:
        raise ValueError(f'unknown shape {name!r}; expected one of {CLASSES}')
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = pts @ rotation.T + np.array([cy, cx])
    return draw.polygon2mask((height, width), pts)


def _paint(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``mask`` with a random colour, a gradient and (sometimes) a noise texture."""
    color = rng.uniform(0, 255, size=3)
    ys, xs = np.nonzero(mask)
    shade = rng.uniform(-40, 40) * (ys - ys.mean()) / max(np.ptp(ys), 1)
    fill = color + shade[:, None]
    if rng.random() < 0.5:
        fill = fill + rng.normal(0, rng.uniform(5, 20), size=fill.shape)
    image[ys, xs] = fill


def coco_summary(ann_file: str) -> Optional[dict]:
    """Counts of a written split: images, objects, objects per class (None if absent)."""
    if not osp.isfile(ann_file):
        return None
    with open(ann_file) as f:
        coco = json.load(f)
    per_class = np.bincount([a['category_id'] - 1 for a in coco['annotations']],
                            minlength=len(CLASSES))
    return dict(images=len(coco['images']), objects=len(coco['annotations']),
                per_class=dict(zip(CLASSES, per_class.tolist())))

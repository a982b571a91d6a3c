"""Teacher, student and projected-student FPN features of one image, side by side, in one PNG.

    python tools/analysis/vis_features.py CONFIG CHECKPOINT IMAGE [--out FILE] [--loss NAME]

CONFIG is a ``DetectionDistiller`` config whose loss maps the student into the teacher's channels
(VkD's orthogonal ``projector``, or an ``adapter``: SRD, FitNet, ...), CHECKPOINT a checkpoint of
its training (the teacher comes from the config's ``teacher_ckpt``). One row per distilled level:
the image, then the teacher feature, the student feature and the projected student feature, each
shown as its first three principal components in RGB.

Every feature is first standardised per channel over the image's pixels (what VkD compares).
Teacher and projected student live in the same space: both are drawn on the *teacher's*
principal components, so equal colours mean equal features. The raw student has its own
components. Each row's title gives the mean over pixels of the cosine similarity between the
standardised projected student and teacher vectors.
"""
import argparse
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import Tensor

from vkd_mmdet.utils import trusted_checkpoints


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Visualise distilled FPN features')
    parser.add_argument('config', help='DetectionDistiller config')
    parser.add_argument('checkpoint', help='checkpoint of the distiller (student + losses)')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', help='output PNG (default: <checkpoint dir>/features_<image>.png)')
    parser.add_argument('--loss', help='name in distill_losses (default: the first one)')
    return parser.parse_args(argv)


def standardise(feature: Tensor) -> Tensor:
    """(C, H, W) -> per-channel zero mean, unit variance over the pixels."""
    flat = feature.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + 1e-5)
            ).view_as(feature)


def principal_components(feature: Tensor, k: int = 3) -> Tuple[Tensor, Tensor]:
    """Mean (C,) and top-``k`` principal directions (C, k) of the pixels of a (C, H, W) map."""
    pixels = feature.flatten(1).T
    mean = pixels.mean(0)
    _, _, vh = torch.linalg.svd(pixels - mean, full_matrices=False)
    components = vh[:k].T
    if components.shape[1] < k:  # fewer channels than colours: pad with black
        components = torch.cat([components, components.new_zeros(len(mean), k - len(vh))], 1)
    return mean, components


def to_rgb(feature: Tensor, mean: Tensor, components: Tensor, scale: Tensor) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) in [0, 1]: coordinates on ``components``, divided by ``scale``."""
    coords = (feature.flatten(1).T - mean) @ components / scale
    rgb = (coords.clamp(-1, 1) + 1) / 2
    return rgb.T.reshape(3, *feature.shape[1:]).permute(1, 2, 0).numpy()


def cosine_similarity(projected: Tensor, teacher: Tensor) -> float:
    """Mean over pixels of the cosine between the channel vectors of two (C, H, W) maps."""
    return torch.nn.functional.cosine_similarity(projected, teacher, dim=0).mean().item()


def student_map(loss: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The loss's map of the student into the teacher's channels (``.projector``: VkD's
    orthogonal one, a free ``LinearAdapter`` of SRD, FitNet, VkD's linear ablation, ...), or
    None."""
    projector = getattr(loss, 'projector', None)
    return projector if isinstance(projector, torch.nn.Module) else None


def main(argv: Optional[Sequence[str]] = None) -> List[float]:
    """Write the PNG; return the per-level cosine similarities."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.model.get('type') != 'DetectionDistiller':
        raise ValueError(f'{args.config}: model.type={cfg.model.get("type")!r}; expected a '
                         "'DetectionDistiller' config")
    model = MODELS.build(cfg.model).eval()
    with trusted_checkpoints():  # a training checkpoint the user hands us, as with load_from
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    name = args.loss or next(iter(model.distill_losses))
    if name not in model.distill_losses:
        raise ValueError(f'--loss {name!r}: the config distils {list(model.distill_losses)}')
    modules = model.distill_losses[name]
    student_maps = [student_map(m) for m in modules]
    if any(m is None for m in student_maps):
        raise ValueError(f'distill_losses.{name} ({type(modules[0]).__name__}) has no '
                         '`projector`; expected a loss that maps the student into '
                         "the teacher's channels, such as VkDLoss")

    pipeline = [t for t in cfg.test_dataloader.dataset.pipeline
                if t['type'] != 'LoadAnnotations']
    data = pseudo_collate([Compose(pipeline)(dict(img_path=args.image, img_id=0))])
    with torch.no_grad():
        student_inputs = model.student.data_preprocessor(data, False)['inputs']
        student_feats = model.student.extract_feat(student_inputs)
        teacher_feats = model.teacher.extract_feat(
            model.teacher.data_preprocessor(data, False)['inputs'])
        rows = []
        for pair, to_teacher in zip(model.distill_levels[name], student_maps):
            student_feat = student_feats[pair.student]
            rows.append((pair.name.upper(), standardise(teacher_feats[pair.teacher][0]),
                         standardise(student_feat[0]),
                         standardise(to_teacher(student_feat)[0])))
    image = data['inputs'][0].flip(0).permute(1, 2, 0).numpy()  # BGR -> RGB
    out = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)),
                               f'features_{osp.splitext(osp.basename(args.image))[0]}.png')
    cosines = [cosine_similarity(projected, teacher) for _, teacher, _, projected in rows]
    for (level_name, *_), cos in zip(rows, cosines):
        print(f'{level_name}: cosine(projected student, teacher) = {cos:.4f}')
    render(image, rows, out)
    print(out)
    return cosines


def render(image: np.ndarray, rows: list, out: str) -> None:
    """One row per level: image, teacher, student, projected student (PCA colours)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 2.6 * len(rows)), squeeze=False)
    for ax_row, (level_name, teacher, student, projected) in zip(axes, rows):
        mean, comps = principal_components(teacher)
        scale = 2 * ((teacher.flatten(1).T - mean) @ comps).std(0) + 1e-6
        s_mean, s_comps = principal_components(student)
        s_scale = 2 * ((student.flatten(1).T - s_mean) @ s_comps).std(0) + 1e-6
        cos = cosine_similarity(projected, teacher)
        panels = [('image', image),
                  (f'teacher {level_name}', to_rgb(teacher, mean, comps, scale)),
                  (f'student {level_name}', to_rgb(student, s_mean, s_comps, s_scale)),
                  (f'projected student (cos {cos:.3f})', to_rgb(projected, mean, comps, scale))]
        for ax, (title, panel) in zip(ax_row, panels):
            ax.imshow(panel, interpolation='nearest')
            ax.set_title(title, fontsize=9)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == '__main__':
    main()

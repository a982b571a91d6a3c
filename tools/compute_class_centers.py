"""Teacher class-mean embeddings for the ND loss (KD++) of a distillation config.

Detection (``DetectionDistiller``, ``NDLoss`` in ``distill_losses``), two ways of choosing the
RoIs whose teacher box-head embeddings (after ReLU, the input of ``fc_cls``) are averaged:

- ``--rois sampled`` (default, the authors' rule): the RoIs the *training* RoI sampler produces,
  exactly those ND is applied to during training. The config's distiller is built (seeded with
  its ``randomness.seed`` and initialised as training starts it); for every training image the
  student runs its training-mode ``loss``: its RPN proposals (``train_cfg.rpn_proposal``) plus
  the appended ground truth, labelled by its assigner and subsampled by its sampler, background
  RoIs counted for row ``num_classes``. The teacher embeds them with its own RoI extractor and
  box head, as ``DetectionDistiller`` does in training. One difference remains: the authors
  accumulate over their training iterations (a student that learns, several epochs), here the
  student stays at its initial weights for one pass over the training set.
- ``--rois gt`` (cheaper: no student, no RPN training proposals): the teacher embeds the
  ground-truth boxes of every image, each counted for its class, and, for the background, the
  negatives its own RoI head samples among its *test-mode* RPN proposals. Its foreground centres
  average exact GT boxes only (the sampled RoIs of ND are GT plus jittered positive proposals)
  and its background those of the teacher's proposals, not the student's.

Classification (``ClassifierDistiller``, ``NDLoss`` with ``background=False`` in
``feature_losses``): the teacher, built and loaded as the distiller builds it, embeds every
training image (the config's train pipeline, the teacher's normalisation) into its penultimate
pooled feature, counted for the image's class (as KD++'s own ImageNet code does).

The class means over the training set are written to the file the config's ``NDLoss`` entry
names in ``class_centers`` (or ``--out``), as ``{'centers': (R, D), 'counts': (R,),
'classes': [...]}`` with ``R = num_classes (+ 1 for the background)``. Partial sums are saved
every ``--save-interval`` batches; ``--resume`` continues from them.

Examples::

    python tools/compute_class_centers.py configs/nd/nd_faster_rcnn_r101_r18.py
    python tools/compute_class_centers.py configs/nd/nd_faster_rcnn_r101_r18.py --rois gt
    python tools/compute_class_centers.py configs/vkd_cls/kdpp_resnet18_resnet34_in1k.py
"""
import argparse
import copy
import os
import os.path as osp

import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.structures.bbox import bbox2roi
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from vkd_mmdet.models.distillers.roi_distillation import (
    capture_student_rois,
    check_roi_head,
    teacher_roi_outputs,
)
from vkd_mmdet.utils import build_model, load_teacher_checkpoint, resolve_model_cfg, safe_load


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='distillation config with an NDLoss entry')
    parser.add_argument('--out', help='output file (default: the NDLoss `class_centers`)')
    parser.add_argument('--rois', choices=['sampled', 'gt'], default='sampled',
                        help='detection: the RoIs of the training sampler (the authors\') or '
                        'GT boxes + the teacher\'s sampled negatives (cheaper)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--max-images', type=int, help='stop after this many images')
    parser.add_argument('--save-interval', type=int, default=500,
                        help='batches between saves of the partial sums')
    parser.add_argument('--resume', action='store_true', help='continue from <out>.partial')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in mmdet tools')
    return parser.parse_args()


def is_classification(model_cfg: dict) -> bool:
    return str(model_cfg.get('type', '')).split('.')[-1] == 'ClassifierDistiller'


def nd_entry(model_cfg: dict) -> dict:
    key = 'feature_losses' if is_classification(model_cfg) else 'distill_losses'
    entries = [loss for loss in (model_cfg.get(key) or {}).values()
               if str(loss.get('type', '')).split('.')[-1] == 'NDLoss']
    if len(entries) != 1:
        raise ValueError(f'{len(entries)} NDLoss entries in model.{key}; expected one')
    return entries[0]


def build_distiller(cfg: Config):
    """The config's distiller as training builds it: seeded with ``randomness``, its teacher
    loaded and frozen (the ND centres are what this tool writes)."""
    set_random_seed(**cfg.get('randomness', dict(seed=None)))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:  # as the Runner passes it (mmpretrain configs)
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    nd_entry(model_cfg)['class_centers'] = None
    return MODELS.build(model_cfg)


@torch.no_grad()
def embed_images(distiller, batch: dict):
    """(teacher pooled features, labels) of a batch of classification images."""
    batch = distiller.teacher.data_preprocessor(batch, False)
    features, _ = distiller.teacher_outputs(batch['inputs'])
    return features, torch.cat([sample.gt_label for sample in batch['data_samples']])


@torch.no_grad()
def embed_sampled_rois(distiller, batch: dict):
    """(teacher embeddings, labels) of the RoIs the student's RoI head samples in a training
    step on ``batch``, the teacher's box head run on them (``DetectionDistiller.loss``'s way)."""
    teacher_batch = distiller.teacher.data_preprocessor(batch, False)
    feats = distiller.teacher.extract_feat(teacher_batch['inputs'])
    student_batch = distiller.student.data_preprocessor(batch, True)
    with capture_student_rois(distiller.student) as record:
        distiller.student.loss(student_batch['inputs'], student_batch['data_samples'])
    embeddings, _ = teacher_roi_outputs(distiller.teacher, feats, record['rois'])
    return embeddings, record['labels']


@torch.no_grad()
def embed_batch(teacher, batch: dict, num_classes: int):
    """(embeddings, labels) of the GT boxes and the background RoIs the teacher samples among
    its test-mode proposals (``--rois gt``)."""
    batch = teacher.data_preprocessor(batch, False)
    feats = teacher.extract_feat(batch['inputs'])
    samples = batch['data_samples']
    proposals = teacher.rpn_head.predict(feats, samples, rescale=False)
    roi_head = teacher.roi_head
    boxes, labels = [], []
    for proposal, sample in zip(proposals, samples):
        gt = sample.gt_instances
        proposal.priors = proposal.pop('bboxes')
        assign = roi_head.bbox_assigner.assign(proposal, gt, sample.get('ignored_instances'))
        negatives = roi_head.bbox_sampler.sample(assign, proposal, gt).neg_priors
        boxes.append(torch.cat([gt.bboxes, negatives]))
        labels.append(torch.cat([gt.labels, gt.labels.new_full((len(negatives),), num_classes)]))
    embeddings, _ = teacher_roi_outputs(teacher, feats, bbox2roi(boxes))
    return embeddings, torch.cat(labels)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    classification = is_classification(cfg.model)
    entry = nd_entry(cfg.model)
    out = args.out or entry.get('class_centers')
    if not out:
        raise ValueError('no output file: give --out or `class_centers` in the NDLoss entry')
    num_classes, background = entry['num_classes'], entry.get('background', True)
    if classification and background:
        raise ValueError('model.feature_losses: set background=False in the NDLoss entry '
                         '(classification has no background class)')
    num_rows = num_classes + int(background)

    sampled = not classification and args.rois == 'sampled'
    if classification or sampled:  # the distiller, teacher and student as training builds them
        model = build_distiller(cfg)
        if sampled:  # the student's proposals and samples: its weights as training starts
            model.init_weights()
    else:
        model = build_model(resolve_model_cfg(cfg.model.teacher, 'teacher'), MODELS)
        load_teacher_checkpoint(model, cfg.model.teacher_ckpt,
                                cfg.model.get('teacher_ckpt_strict', True),
                                cfg.model.get('teacher_ckpt_trusted', False))
        check_roi_head(model, 'teacher', 'nd')
    # The training sampler runs in the student's training mode (the teacher stays in eval).
    model.to(args.device).train(sampled)

    partial = out + '.partial'
    state = dict(sums=None, counts=torch.zeros(num_rows, dtype=torch.float64), done=0)
    if args.resume and osp.exists(partial):
        state = safe_load(partial, map_location='cpu')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    end = len(dataset) if args.max_images is None else min(args.max_images, len(dataset))
    loader = DataLoader(Subset(dataset, range(state['done'], end)), batch_size=args.batch_size,
                        num_workers=args.num_workers, collate_fn=pseudo_collate)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    progress = tqdm(loader, initial=state['done'] // args.batch_size,
                    total=-(-end // args.batch_size), desc='class centres')
    for step, batch in enumerate(progress, 1):
        if classification:
            embeddings, labels = embed_images(model, batch)
        elif sampled:
            embeddings, labels = embed_sampled_rois(model, batch)
        else:
            embeddings, labels = embed_batch(model, batch, num_classes)
        embeddings = embeddings.double().cpu()
        if state['sums'] is None:
            state['sums'] = torch.zeros(num_rows, embeddings.shape[1], dtype=torch.float64)
        state['sums'].index_add_(0, labels.cpu(), embeddings)
        state['counts'] += torch.bincount(labels.cpu(), minlength=num_rows).double()
        state['done'] = min(state['done'] + len(batch['inputs']), end)
        if step % args.save_interval == 0:
            torch.save(state, partial)
    if state['sums'] is None:
        raise RuntimeError('no image was processed')
    centers = state['sums'] / state['counts'].clamp(min=1)[:, None]
    classes = list(dataset.metainfo.get('classes', [])) + ['background'] * int(background)
    torch.save(dict(centers=centers.float(), counts=state['counts'].float(), classes=classes), out)
    if osp.exists(partial):
        os.remove(partial)
    missing = [name for name, count in zip(classes, state['counts'].tolist()) if count == 0]
    print(f'wrote {out}: {tuple(centers.shape)} centres from {state["done"]} images'
          + (f'; no sample of {missing}' if missing else ''))


if __name__ == '__main__':
    main()

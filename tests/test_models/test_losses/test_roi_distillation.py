"""RoI inputs of ND / KD++: recorded student RoIs, embeddings and logits, the teacher's on the
same RoIs, the RoI-head check, and tools/compute_class_centers.py (means, resume)."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmdet.registry import DATASETS, MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from tool_scripts import load_tool, run_interrupted

from vkd_mmdet.models.distillers.roi_distillation import capture_student_rois, teacher_roi_outputs
from vkd_mmdet.testing import (
    CLASSES,
    make_synthetic_coco,
    save_random_checkpoint,
    tiny_detector_cfg,
)

FASTER = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


def _head_by_hand(detector, feats, rois):
    """Shared2FCBBoxHead written out: RoIAlign, flatten, fc -> ReLU twice, fc_cls."""
    head = detector.roi_head.bbox_head
    x = detector.roi_head.bbox_roi_extractor(feats[:4], rois).flatten(1)
    for fc in head.shared_fcs:
        x = F.relu(fc(x))
    return x, head.fc_cls(x)


def test_student_record_and_teacher_outputs():
    init_default_scope('mmdet')
    torch.manual_seed(0)
    detector = MODELS.build(tiny_detector_cfg(FASTER, num_classes=3, base_channels=8,
                                              neck_channels=16))
    data = detector.data_preprocessor(
        demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3), True)
    with capture_student_rois(detector) as record:
        detector.loss(data['inputs'], data['data_samples'])
    assert 'bbox_loss' not in vars(detector.roi_head)  # the method is restored
    rois, labels = record['rois'], record['labels']
    assert rois.shape[1] == 5 and labels.shape == rois.shape[:1]
    assert set(rois[:, 0].tolist()) == {0., 1.}
    assert labels.min() >= 0 and labels.max() <= 3 and (labels == 3).any()
    detector.eval()  # fixed BatchNorm statistics for an exact re-computation
    with torch.no_grad():
        feats = detector.extract_feat(data['inputs'])
        embeddings, logits = _head_by_hand(detector, feats, rois)
        assert (embeddings >= 0).all()  # after ReLU
        got_embeddings, got_logits = teacher_roi_outputs(detector, feats, rois)
    torch.testing.assert_close(got_embeddings, embeddings)
    torch.testing.assert_close(got_logits, logits)
    assert record['embeddings'].shape == embeddings.shape
    torch.testing.assert_close(detector.roi_head.bbox_head.fc_cls(record['embeddings']),
                               record['logits'])


def test_roi_loss_needs_a_roi_head(tmp_path):
    init_default_scope('mmdet')
    retina = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', num_classes=3,
                               base_channels=8, neck_channels=16)
    centers = str(tmp_path / 'c.pth')
    torch.save({'centers': torch.randn(4, 32)}, centers)
    with pytest.raises(ValueError, match='distill_losses.nd: RoI distillation needs'):
        MODELS.build(dict(
            type='DetectionDistiller', student=retina, teacher=retina,
            teacher_ckpt=save_random_checkpoint(retina, str(tmp_path / 't.pth')),
            distill_losses=dict(nd=dict(type='NDLoss', num_classes=3, in_channels=32,
                                        out_channels=32, class_centers=centers))))
    with pytest.raises(ValueError, match=r'distill_losses\.x\.inputs is no longer read'):
        MODELS.build(dict(
            type='DetectionDistiller', student=retina, teacher=retina,
            teacher_ckpt=str(tmp_path / 't.pth'),
            distill_losses=dict(x=dict(type='FitNetLoss', in_channels=16, out_channels=16,
                                       inputs='fpn_all'))))


def test_compute_class_centers_gt_mode_means_and_resume(tmp_path, monkeypatch):
    init_default_scope('mmdet')
    make_synthetic_coco(str(tmp_path / 'data'), num_train=4, num_val=1, image_size=(64, 96),
                        max_objects=3)
    teacher = tiny_detector_cfg(FASTER, num_classes=len(CLASSES), base_channels=8,
                                neck_channels=16)
    ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(96, 64), keep_ratio=True), dict(type='PackDetInputs')]
    dataset = dict(type='CocoDataset', data_root=str(tmp_path / 'data'),
                   ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                   metainfo=dict(classes=CLASSES), pipeline=pipeline)
    config = tmp_path / 'nd.py'
    config.write_text(
        "custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)\n"
        f"model = dict(teacher={dict(teacher)!r}, teacher_ckpt={ckpt!r},\n"
        "    distill_losses=dict(nd=dict(type='NDLoss', num_classes=5, in_channels=32,\n"
        f"        out_channels=32, class_centers={str(tmp_path / 'centers.pth')!r})))\n"
        f"train_dataloader = dict(dataset={dataset!r})\n")
    tool = load_tool('compute_class_centers.py')
    args = ['compute_class_centers.py', str(config), '--rois', 'gt', '--batch-size', '1',
            '--num-workers', '0', '--save-interval', '1']
    # Interrupted after two images, then resumed.
    run_interrupted(monkeypatch, tool, args, 'embed_batch', after_calls=2)
    assert torch.load(str(tmp_path / 'centers.pth.partial'), weights_only=True)['done'] == 2
    monkeypatch.setattr(sys, 'argv', args + ['--resume'])
    tool.main()
    result = torch.load(str(tmp_path / 'centers.pth'), weights_only=True)
    assert not osp.exists(str(tmp_path / 'centers.pth.partial'))
    assert result['centers'].shape == (6, 32) and result['counts'][5] > 0

    # Independent foreground means: the teacher's box head on each image's GT boxes.
    model = MODELS.build(teacher)
    model.load_state_dict(torch.load(ckpt, weights_only=True)['state_dict'])
    model.eval()
    sums, counts = torch.zeros(5, 32), torch.zeros(5)
    for item in DATASETS.build(dataset):
        batch = model.data_preprocessor(dict(inputs=[item['inputs']],
                                             data_samples=[item['data_samples']]), False)
        gt = batch['data_samples'][0].gt_instances
        with torch.no_grad():
            feats = model.extract_feat(batch['inputs'])
            embeddings, _ = _head_by_hand(model, feats, bbox2roi([gt.bboxes]))
        sums.index_add_(0, gt.labels, embeddings)
        counts += torch.bincount(gt.labels, minlength=5)
    seen = counts > 0
    torch.testing.assert_close(result['counts'][:5], counts)
    torch.testing.assert_close(result['centers'][:5][seen], (sums / counts[:, None])[seen],
                               atol=1e-5, rtol=1e-4)


def test_compute_class_centers_default_averages_the_training_sampler_rois(tmp_path,
                                                                          monkeypatch):
    """Default ``--rois sampled``: per label, the mean teacher embedding of the RoIs the
    student's training sampler produces (its train-mode RPN proposals + the appended GT,
    labelled by IoU >= 0.3 with a GT box, else background), background row included. The
    sampler keeps every RoI here (num 10^5), so the reference is deterministic: proposals from
    mmdet's RPN head with train_cfg.rpn_proposal, labels from torchvision's box_iou."""
    init_default_scope('mmdet')
    make_synthetic_coco(str(tmp_path / 'data'), num_train=3, num_val=1, image_size=(64, 96),
                        max_objects=3)
    teacher = tiny_detector_cfg(FASTER, num_classes=len(CLASSES), base_channels=8,
                                neck_channels=16)
    student = tiny_detector_cfg(FASTER, num_classes=len(CLASSES), base_channels=8,
                                neck_channels=16)
    student.train_cfg.rcnn.sampler.num = 100000
    # A low IoU threshold: some proposals of the untrained RPN become positives too.
    student.train_cfg.rcnn.assigner.update(pos_iou_thr=0.3, neg_iou_thr=0.3, min_pos_iou=0.3)
    ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'), seed=1)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(96, 64), keep_ratio=True), dict(type='PackDetInputs')]
    dataset = dict(type='CocoDataset', data_root=str(tmp_path / 'data'),
                   ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                   metainfo=dict(classes=CLASSES), pipeline=pipeline)
    model_cfg = dict(type='DetectionDistiller', student=student.to_dict(),
                     teacher=teacher.to_dict(), teacher_ckpt=ckpt,
                     distill_losses=dict(nd=dict(type='NDLoss', num_classes=5, in_channels=32,
                                                 out_channels=32)))
    config = tmp_path / 'nd.py'
    config.write_text(
        "custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)\n"
        f"model = {model_cfg!r}\n"
        f"train_dataloader = dict(dataset={dataset!r})\n"
        "randomness = dict(seed=3)\n")
    out = str(tmp_path / 'centers.pth')
    monkeypatch.setattr(sys, 'argv', ['compute_class_centers.py', str(config), '--out', out,
                                      '--batch-size', '1', '--num-workers', '0'])
    load_tool('compute_class_centers.py').main()
    result = torch.load(out, weights_only=True)

    # Reference: the distiller built from the same seed, the RoIs rebuilt by hand.
    set_random_seed(3)
    distiller = MODELS.build(model_cfg)
    distiller.init_weights()
    distiller.train()
    student, teacher = distiller.student, distiller.teacher
    sums, counts = torch.zeros(6, 32, dtype=torch.float64), torch.zeros(6)
    num_gt = 0
    with torch.no_grad():
        for item in DATASETS.build(dataset):
            data = dict(inputs=[item['inputs']], data_samples=[item['data_samples']])
            teacher_batch = teacher.data_preprocessor(data, False)
            student_batch = student.data_preprocessor(data, True)
            sample = student_batch['data_samples'][0]
            feats = student.extract_feat(student_batch['inputs'])
            proposals = student.rpn_head.predict_by_feat(
                *student.rpn_head(feats), batch_img_metas=[sample.metainfo],
                cfg=student.train_cfg.rpn_proposal, rescale=False)[0].bboxes
            gt = sample.gt_instances
            boxes = torch.cat([gt.bboxes, proposals])  # the sampler appends the GT
            best, match = torchvision.ops.box_iou(boxes, gt.bboxes).max(dim=1)
            labels = torch.where(best >= 0.3, gt.labels[match], torch.full_like(match, 5))
            num_gt += len(gt)
            embeddings, _ = _head_by_hand(teacher, teacher.extract_feat(teacher_batch['inputs']),
                                          bbox2roi([boxes]))
            sums.index_add_(0, labels, embeddings.double())
            counts += torch.bincount(labels, minlength=6)
    assert counts[5] > 0 and counts[:5].sum() > num_gt  # positive proposals beside the GT
    torch.testing.assert_close(result['counts'], counts)
    seen = counts > 0
    torch.testing.assert_close(result['centers'][seen],
                               (sums / counts[:, None])[seen].float(), atol=1e-5, rtol=1e-4)

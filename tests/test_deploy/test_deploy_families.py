"""Each detector family we ship whose head mmdeploy supports, as a tiny random distiller's student:
export, convert to ONNX with our deploy config, and ONNX Runtime reproduces plain mmdet's
detections on the same inputs (dynamic batch and image size).

Two references, neither of them the code under test: mmdet's own ``predict`` on the preprocessed
batch, against (a) a bare ``onnxruntime.InferenceSession`` on the same tensor (the graph's raw
``dets`` / ``labels``, no mmdeploy wrapper) and (b) what ``deploy_student`` reports.

Where mmdeploy's end-to-end graph differs from mmdet by design, the tiny test configs keep out of
the way so that any other difference shows (README, "Deploy the student"):
the boxes are clipped to the padded batch instead of each image (the images here are multiples of
32: no padding); ``nms_pre`` keeps the top priors instead of the top (prior, class) pairs (here it
keeps every pair); boxes of zero width or height are kept (mmdet drops them with
``min_bbox_size=0``: here -1, kept too); the RPN runs one NMS over all levels instead of one per
level (here its IoU threshold is 1: nothing is suppressed either way); a two-stage head gives each
RoI the box of its best class for every class (here the box regression is class-agnostic);
RTMDet's boxes are not clipped to the image (here mmdet's are not either).

mmdeploy, onnx and onnxruntime are the [deploy] extra: both pinned stacks install them
(requirements/pinned*.txt, tools/install_env.sh), so CI runs this module on each. Where they are
missing, it fails to import: an error, never a skip.
"""
import copy

import numpy as np
import onnxruntime
import pytest
import torch
from mmcv import imwrite
from mmcv.transforms import Compose
from mmdet.apis import init_detector
from mmdet.registry import MODELS
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from vkd_mmdet.apis.deploy_student import check_onnx, dataset_images, deploy_student
from vkd_mmdet.testing import tiny_detector_cfg
from vkd_mmdet.testing.tiny_detectors import mmdet_model_cfg

FAMILIES = {
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'retinanet': 'retinanet/retinanet_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'gfl': 'gfl/gfl_r50_fpn_1x_coco.py',
    'rtmdet': 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
}
#: (height, width): multiples of 32 (no padding); the first two form a batch of 2, the third
#: a batch of 1 in another shape, none the shape the model was traced on. At stride 128 (FCOS's
#: and GFL's P7) each still has 2 positions: their GroupNorm needs more than one value.
IMAGE_SHAPES = [(128, 192), (128, 192), (192, 128)]
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
NUM_CLASSES = 3
BOX_ATOL, SCORE_ATOL = 1e-3, 1e-5
TOP_K = 20


def tiny_student(family: str) -> Config:
    init_default_scope('mmdet')
    if family == 'rtmdet':  # CSPNeXt, not a ResNet: shrunk here
        cfg = mmdet_model_cfg(FAMILIES[family])
        cfg.backbone.update(widen_factor=0.125, init_cfg=None)
        cfg.neck.update(in_channels=[32, 64, 128], out_channels=32, num_csp_blocks=1)
        # exp_on_reg (RTMDet-m/l/x's head): random weights then give boxes of positive size.
        cfg.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1,
                             num_classes=NUM_CLASSES, exp_on_reg=True)
        cfg.bbox_head.bbox_coder.clip_border = False
    else:
        cfg = tiny_detector_cfg(FAMILIES[family], num_classes=NUM_CLASSES)
    if family == 'faster_rcnn':
        # 300 proposals, not 1000: the same in both, a third of the RoI head's time
        cfg.test_cfg.rpn.update(min_bbox_size=-1, max_per_img=300)
        cfg.test_cfg.rpn.nms.iou_threshold = 1.0
        cfg.roi_head.bbox_head.reg_class_agnostic = True
    else:
        # every (prior, class) pair of the densest level (stride 8): no larger, the graph pads
        # the priors up to nms_pre
        priors = (9 if family == 'retinanet' else 1) * IMAGE_SHAPES[0][0] * IMAGE_SHAPES[0][1] // 64
        cfg.test_cfg.update(nms_pre=priors * NUM_CLASSES, min_bbox_size=-1)
    return cfg


@pytest.fixture(params=sorted(FAMILIES))
def distilled(request, tmp_path) -> dict:
    """A distiller config over mmdet's packaged config of the family and a checkpoint holding a
    random tiny student (``student.*`` keys, as a distiller run writes them); test images."""
    family = request.param
    student = tiny_student(family)
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(student))
    torch.save({'state_dict': {f'student.{k}': v for k, v in model.state_dict().items()},
                'meta': {}}, tmp_path / 'iter_1.pth')
    config = tmp_path / f'{family}_distiller.py'
    config.write_text(
        f"_base_ = ['mmdet::{FAMILIES[family]}']\n"
        "custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)\n"
        f"model = dict(_delete_=True, type='DetectionDistiller', student={student.to_dict()!r},\n"
        f"             teacher={student.to_dict()!r}, teacher_ckpt='unused.pth')\n"
        f'test_pipeline = {TEST_PIPELINE!r}\n'
        'test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n')
    rng = np.random.RandomState(0)
    images = []
    for i, shape in enumerate(IMAGE_SHAPES):
        images.append(str(tmp_path / f'image{i}.png'))
        imwrite(rng.randint(0, 256, (*shape, 3), dtype=np.uint8), images[-1])
    trace = str(tmp_path / 'trace.png')  # yet another shape: the axes must stay dynamic
    imwrite(rng.randint(0, 256, (160, 160, 3), dtype=np.uint8), trace)
    return dict(family=family, config=str(config), checkpoint=str(tmp_path / 'iter_1.pth'),
                images=images, trace=trace, work_dir=str(tmp_path / 'deploy'))


def top_detections(instances: InstanceData, k: int = TOP_K) -> tuple:
    """Labels, scores and boxes of the ``k`` best-scoring detections, best first; equal scores
    (to 1e-4: random weights give ties) ordered by their boxes' corners."""
    keys = torch.cat([-instances.scores[:, None].double().mul(1e4).round(),
                      instances.bboxes.double().round()], dim=1)
    order = np.lexsort(keys.numpy().T[::-1])[:k]
    return instances.labels[order], instances.scores[order], instances.bboxes[order]


def test_onnx_runtime_reproduces_mmdet(distilled):
    deployment = deploy_student(distilled['config'], distilled['checkpoint'],
                                distilled['work_dir'], distilled['images'], batch_size=2,
                                trace_image=distilled['trace'])
    assert len(deployment.agreements) == len(IMAGE_SHAPES)
    for agreement in deployment.agreements:  # every detection paired
        assert agreement.num_reference > 0
        assert agreement.agrees(BOX_ATOL, SCORE_ATOL), agreement

    # (a) the bare graph on the preprocessed batches, against mmdet's predict without rescaling:
    # the best detections, in order
    model = init_detector(deployment.config, deployment.checkpoint, device='cpu')
    session = onnxruntime.InferenceSession(deployment.onnx, providers=['CPUExecutionProvider'])
    pipeline = Compose(get_test_pipeline_cfg(Config.fromfile(deployment.config)))
    for batch_images in (distilled['images'][:2], distilled['images'][2:]):
        data = model.data_preprocessor(
            pseudo_collate([pipeline(dict(img_path=p, img_id=0)) for p in batch_images]), False)
        with torch.no_grad():
            expected = model.predict(data['inputs'], data['data_samples'], rescale=False)
        dets, labels = session.run(['dets', 'labels'], {'input': data['inputs'].numpy()})
        assert dets.shape[0] == len(batch_images)
        for i, sample in enumerate(expected):
            ours = InstanceData(bboxes=torch.from_numpy(dets[i, :, :4]),
                                scores=torch.from_numpy(dets[i, :, 4]),
                                labels=torch.from_numpy(labels[i]).long())
            (labels_, scores, boxes), (ref_labels, ref_scores, ref_boxes) = \
                top_detections(ours), top_detections(sample.pred_instances)
            assert len(ref_labels) == TOP_K
            assert torch.equal(labels_, ref_labels)
            torch.testing.assert_close(scores, ref_scores, rtol=0, atol=SCORE_ATOL)
            torch.testing.assert_close(boxes, ref_boxes, rtol=0, atol=BOX_ATOL)


def test_bad_arguments_name_what_was_expected():
    cfg = Config(dict(model=dict(type='RetinaNet')))
    with pytest.raises(ValueError, match='batch_size: expected a positive number, got 0'):
        check_onnx(cfg, 'x.pth', 'x.onnx', ['a.png'], batch_size=0)
    with pytest.raises(ValueError, match='images: expected at least one image'):
        check_onnx(cfg, 'x.pth', 'x.onnx', [])
    with pytest.raises(ValueError, match='no test_dataloader'):
        dataset_images(cfg, 3)

"""vkd_mmdet.compat.mmdet, mmdet's private StandardRoIHead API behind its adapters: each adapter
against the public path (the RoI extractor and box head run by hand, the detector's own loss), and
a missing or re-signed method is an UpstreamAPIError naming mmdet and the attribute."""
import pytest
import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.testing import demo_mm_inputs
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.compat import UpstreamAPIError
from vkd_mmdet.compat.mmdet import bbox_forward, check_roi_head_api, intercept_bbox_loss
from vkd_mmdet.testing import tiny_detector_cfg

FASTER = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


@pytest.fixture
def detector():
    init_default_scope('mmdet')
    return MODELS.build(tiny_detector_cfg(FASTER, num_classes=3, base_channels=8,
                                          neck_channels=16))


def _batch(detector):
    return detector.data_preprocessor(
        demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3), True)


def _box_head_by_hand(roi_head, feats, rois):
    """The public modules: extractor on the levels its strides name, then the box head."""
    extractor = roi_head.bbox_roi_extractor
    return roi_head.bbox_head(extractor(feats[:len(extractor.featmap_strides)], rois))


def test_bbox_forward_is_the_extractor_then_the_box_head(detector):
    data = _batch(detector)
    rois = torch.tensor([[0., 4., 4., 60., 50.], [1., 10., 8., 40., 30.], [0., 0., 0., 127., 95.]])
    with torch.no_grad():
        feats = detector.extract_feat(data['inputs'])
        got = bbox_forward(detector.roi_head, feats, rois)
        cls_score, bbox_pred = _box_head_by_hand(detector.roi_head, feats, rois)
    assert got['cls_score'].shape == (3, 4)  # 3 classes + background
    torch.testing.assert_close(got['cls_score'], cls_score)
    torch.testing.assert_close(got['bbox_pred'], bbox_pred)


def test_intercepted_bbox_loss_is_the_one_the_detector_loss_runs(detector):
    data = _batch(detector)
    calls = []

    def wrapper(bbox_loss, x, sampling_results):
        results = bbox_loss(x, sampling_results)
        calls.append((x, sampling_results, results))
        return results

    with intercept_bbox_loss(detector.roi_head, wrapper):
        losses = detector.loss(data['inputs'], data['data_samples'])
    assert 'bbox_loss' not in vars(detector.roi_head)  # the class's method again
    (x, sampling_results, results), = calls
    assert losses['loss_cls'] is results['loss_bbox']['loss_cls']
    rois = bbox2roi([res.priors for res in sampling_results])
    with torch.no_grad():
        cls_score, _ = _box_head_by_hand(detector.roi_head, x, rois)
    torch.testing.assert_close(results['cls_score'], cls_score)


def test_intercept_is_undone_when_the_loss_raises(detector):
    data = _batch(detector)

    def failing(bbox_loss, x, sampling_results):
        raise RuntimeError('in the wrapper')

    with pytest.raises(RuntimeError, match='in the wrapper'), \
            intercept_bbox_loss(detector.roi_head, failing):
        detector.loss(data['inputs'], data['data_samples'])
    assert 'bbox_loss' not in vars(detector.roi_head)


def _use_bbox_forward(roi_head):
    return bbox_forward(roi_head, (), torch.zeros(0, 5))


def _use_bbox_loss(roi_head):
    with intercept_bbox_loss(roi_head, lambda *args: {}):
        pass


ADAPTER_OF = {'_bbox_forward': _use_bbox_forward, 'bbox_loss': _use_bbox_loss}


@pytest.mark.parametrize('name, replacement, problem', [
    ('_bbox_forward', None, 'is missing'),
    ('bbox_loss', None, 'is missing'),
    ('_bbox_forward', lambda self, x: None, 'should take'),  # a parameter fewer
    ('_bbox_forward', lambda self, x, rois, scale: None, 'should take'),  # a required one more
    ('bbox_loss', lambda self, stage, x, sampling_results: None, 'should take'),  # Cascade's
])
def test_a_missing_or_resigned_method_is_a_clear_error(detector, monkeypatch, name,
                                                        replacement, problem):
    if replacement is None:
        monkeypatch.delattr(StandardRoIHead, name)
    else:
        monkeypatch.setattr(StandardRoIHead, name, replacement)
    pattern = rf'^mmdet \S+: StandardRoIHead\.{name} {problem}.*checked with mmdet 3\.3\.0'
    for use in (check_roi_head_api, ADAPTER_OF[name]):
        with pytest.raises(UpstreamAPIError, match=pattern):
            use(detector.roi_head)
    assert 'bbox_loss' not in vars(detector.roi_head)


def test_a_trailing_optional_parameter_is_accepted(detector, monkeypatch):
    monkeypatch.setattr(StandardRoIHead, '_bbox_forward',
                        lambda self, x, rois, scale=1.0: dict(cls_score=rois))
    rois = torch.ones(2, 5)
    assert bbox_forward(detector.roi_head, (), rois)['cls_score'] is rois

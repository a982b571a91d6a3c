"""vkd_mmdet.compat.mmpretrain, mmpretrain's private API behind its adapters: each adapter against
the public path (the head's own ``loss`` and ``forward``, the preprocessor's own forward), and a
missing or re-signed attribute is an UpstreamAPIError naming mmpretrain and the attribute."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from vkd_mmdet.compat import UpstreamAPIError
from vkd_mmdet.compat.mmpretrain import (
    cls_head_loss,
    deit_head_logits,
    preprocessor_normalization,
)

NUM_CLASSES, WIDTH = 5, 8
PATTERN = r'^mmpretrain \S+: {}.*checked with mmpretrain 1\.2\.0'


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    init_default_scope('mmpretrain')


def _samples(n=4):
    return [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)]


def _deit_head(**kwargs):
    head = MODELS.build(dict(type='DeiTClsHead', num_classes=NUM_CLASSES, in_channels=WIDTH,
                             **kwargs))
    for param in head.parameters():  # it initialises its linear layers to zero
        torch.nn.init.normal_(param)
    return head.eval()


def test_cls_head_loss_is_the_heads_own_loss_on_its_logits():
    head = MODELS.build(dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=WIDTH,
                             cal_acc=True, topk=(1, 2)))
    feats = (torch.randn(4, WIDTH),)
    ours = cls_head_loss(head, head(feats), _samples())
    theirs = head.loss(feats, _samples())
    assert set(ours) == set(theirs) == {'loss', 'accuracy_top-1', 'accuracy_top-2'}
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key])


@pytest.mark.parametrize('hidden_dim', [None, 16])
def test_deit_head_logits_are_the_two_heads_the_forward_averages(hidden_dim):
    """Each logit depends on its own token only, and their mean is the public forward."""
    head = _deit_head(hidden_dim=hidden_dim)
    patches, cls_token, dist_a, dist_b = torch.randn(4, 3, WIDTH).unbind(0)
    with torch.no_grad():
        cls_a, distilled_a = deit_head_logits(head, [(patches, cls_token, dist_a)])
        cls_b, distilled_b = deit_head_logits(head, [(patches, cls_token, dist_b)])
        mean_a = head([(patches, cls_token, dist_a)])
        mean_b = head([(patches, cls_token, dist_b)])
    torch.testing.assert_close(cls_a, cls_b)
    torch.testing.assert_close((cls_a + distilled_a) / 2, mean_a)
    torch.testing.assert_close(distilled_a - distilled_b, 2 * (mean_a - mean_b))
    assert not torch.allclose(distilled_a, distilled_b)


def test_preprocessor_normalization_is_what_its_forward_applies():
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 5.0]
    preprocessor = MODELS.build(dict(type='ClsDataPreprocessor', mean=mean, std=std,
                                     to_rgb=True))
    got_mean, got_std, to_rgb = preprocessor_normalization(preprocessor)
    assert to_rgb
    torch.testing.assert_close(got_mean.flatten(), torch.tensor(mean))
    torch.testing.assert_close(got_std.flatten(), torch.tensor(std))
    image = torch.randint(0, 256, (3, 6, 6), dtype=torch.uint8)
    normalised = preprocessor(dict(inputs=[image]))['inputs'][0]
    torch.testing.assert_close(normalised, (image.float().flip(0) - got_mean) / got_std)

    plain = MODELS.build(dict(type='ClsDataPreprocessor'))
    assert preprocessor_normalization(plain) == (None, None, False)
    torch.testing.assert_close(plain(dict(inputs=[image]))['inputs'][0], image.float())


def test_a_missing_or_resigned_private_api_is_a_clear_error(monkeypatch):
    preprocessor = MODELS.build(dict(type='ClsDataPreprocessor', mean=[0.] * 3, std=[1.] * 3))
    del preprocessor._enable_normalize
    with pytest.raises(UpstreamAPIError,
                       match=PATTERN.format(r'ClsDataPreprocessor\._enable_normalize is missing')):
        preprocessor_normalization(preprocessor)

    head = _deit_head()
    del head.layers.head_dist
    with pytest.raises(UpstreamAPIError,
                       match=PATTERN.format(r'DeiTClsHead\.layers\.head_dist is missing')):
        deit_head_logits(head, [(torch.zeros(1, WIDTH),) * 3])

    linear = MODELS.build(dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=WIDTH))
    logits = torch.zeros(4, NUM_CLASSES)
    monkeypatch.setattr(ClsHead, '_get_loss', lambda self, cls_score, targets, weights: {})
    with pytest.raises(UpstreamAPIError,
                       match=PATTERN.format(r'LinearClsHead\._get_loss should take')):
        cls_head_loss(linear, logits, _samples())
    monkeypatch.delattr(ClsHead, '_get_loss')
    with pytest.raises(UpstreamAPIError,
                       match=PATTERN.format(r'LinearClsHead\._get_loss is missing')):
        cls_head_loss(linear, logits, _samples())

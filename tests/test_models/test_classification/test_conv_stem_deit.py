import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import vkd_mmdet.classification  # noqa: F401 (registers the mmpretrain modules)
from vkd_mmdet.testing.tiny_classifiers import IMG, NUM_CLASSES, tiny_deit


@pytest.fixture
def model():
    init_default_scope('mmpretrain')
    model = MODELS.build(tiny_deit())
    model.init_weights()
    # DeiTClsHead initialises its linear layers to zero: give them values for the checks.
    for param in model.head.parameters():
        torch.nn.init.normal_(param)
    return model.eval()


def test_tokens_and_outputs(model):
    """Distillation token = mean of the embedded patches (+ its position embedding); outputs =
    (mean of the final patch tokens, cls token, distillation token)."""
    backbone = model.backbone
    seen = {}
    backbone.patch_embed.register_forward_hook(lambda m, a, out: seen.update(patches=out[0]))
    backbone.layers[0].register_forward_pre_hook(lambda m, a: seen.update(tokens=a[0]))
    backbone.ln1.register_forward_hook(lambda m, a, out: seen.update(final=out))
    x = torch.randn(2, 3, IMG, IMG)
    (pooled, cls_token, dist_token), = backbone(x)

    patches, tokens, final = seen['patches'], seen['tokens'], seen['final']
    assert patches.shape == (2, (IMG // 16) ** 2, 32)
    pos = backbone.pos_embed
    torch.testing.assert_close(tokens[:, 1], patches.mean(1) + pos[0, 1])
    torch.testing.assert_close(tokens[:, 0], (backbone.cls_token[0, 0] + pos[0, 0]).expand(2, -1))
    torch.testing.assert_close(pooled, final[:, 2:].mean(1))
    torch.testing.assert_close(cls_token, final[:, 0])
    torch.testing.assert_close(dist_token, final[:, 1])
    assert not hasattr(backbone, 'dist_token')


def test_inference_averages_heads(model):
    x = torch.randn(2, 3, IMG, IMG)
    (_, cls_token, dist_token), = model.backbone(x)
    expected = (cls_token @ model.head.layers.head.weight.T + model.head.layers.head.bias
                + dist_token @ model.head.layers.head_dist.weight.T
                + model.head.layers.head_dist.bias) / 2
    torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (2, NUM_CLASSES)


def test_other_input_size_and_stride(model):
    assert model.backbone(torch.randn(1, 3, 48, 64))[0][0].shape == (1, 32)
    with pytest.raises(ValueError, match='patch_cfg'):
        MODELS.build(tiny_deit(patch_cfg=dict(kernel_size=8)))

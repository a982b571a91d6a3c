"""The loss contract as the distillers read it: declarations checked at build time, extras
handed per step, old keys refused with what to write, loss keys never overwritten, the
distiller's generator saved with its state."""
import copy

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.losses import DistillLoss
from vkd_mmdet.models.projectors import LinearAdapter
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


class _DrawsNoise(DistillLoss):
    """A test loss: the mean of noise drawn from the distiller's generator, per level."""
    extras = ('generator',)
    channel_args = {}

    def forward(self, student, teacher, generator):
        noise = torch.rand(student.shape[0], generator=generator)
        return self.loss_weight * (noise.mean() + 0 * student.sum())


class _WantsStrideOnRoIs(DistillLoss):
    consumes = 'embeddings'
    extras = ('stride',)
    channel_args = {}


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')


def _cfg(tmp_path, detector=RETINANET, **losses):
    student = tiny_detector_cfg(detector, neck_channels=16)
    teacher = tiny_detector_cfg(detector, base_channels=12, neck_channels=32)
    return dict(type='DetectionDistiller', student=student, teacher=teacher,
                teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 't.pth')),
                distill_losses=losses)


def _batch(seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3)


@pytest.mark.parametrize('loss, error, message', [
    (dict(type='L1Loss'), TypeError,
     r'distill_losses\.x\.type=.L1Loss.: L1Loss is not a distillation loss: subclass'),
    (dict(type=_WantsStrideOnRoIs), ValueError,
     r"distill_losses\.x: _WantsStrideOnRoIs needs the extras \['stride'\]; with 'embeddings'"),
    (dict(type='VkDLoss', orthogonal_map='cayley'), ValueError,
     r"distill_losses\.x\.orthogonal_map is no longer read: projector=dict\("
     r"type='OrthogonalProjector'"),
    (dict(type='VkDLoss', orthogonal=False), ValueError,
     r"distill_losses\.x\.orthogonal is no longer read: projector=dict\(type='LinearAdapter'"),
    (dict(type='LogitKDLoss', inputs='roi_logits'), ValueError,
     r'distill_losses\.x\.inputs is no longer read: remove it'),
    (dict(type='VkDLoss', loss_weight=-1.0), ValueError,
     r'VkDLoss: loss_weight must be a finite number >= 0'),
    (dict(type='VkDLoss', loss_weight=float('nan')), ValueError, r'loss_weight must be a finite'),
    (dict(type='VkDLoss', levels=[0, 0]), ValueError,
     r'distill_losses\.x: stride \[8\] is listed more than once'),
    (dict(type='VkDLoss', projector=dict(type='LinearAdapter', in_channels=3)), ValueError,
     r"sets \['in_channels'\]; the widths are the loss's"),
    (dict(type='CWDLoss', projector=None), ValueError,
     r"CWDLoss: projector=None maps nothing, but in_channels=16 != out_channels=32"),
])
def test_bad_declarations_and_configs_are_refused_at_build_naming_the_key(
        tmp_path, loss, error, message):
    with pytest.raises(error, match=message):
        MODELS.build(_cfg(tmp_path, x=loss))


def test_a_loss_key_equal_to_a_student_key_is_an_error_not_an_overwrite(tmp_path):
    # LogitKDLoss consumes RoI logits in a Faster R-CNN: named 'cls', it would log `loss_cls`.
    model = MODELS.build(_cfg(tmp_path, FASTER_RCNN, cls=dict(type='LogitKDLoss'))).train()
    data = model.data_preprocessor(_batch(), True)
    with pytest.raises(ValueError, match=r"key\(s\) \['loss_cls'\] equal the student's own"):
        model(**data, mode='loss')


def test_the_distiller_generator_resumes_exactly_and_leaves_the_global_stream(tmp_path):
    model = MODELS.build(_cfg(tmp_path, noise=dict(type=_DrawsNoise))).train()
    assert '_extra_state' in ''.join(model.state_dict())
    data = model.data_preprocessor(_batch(), True)
    model(**copy.deepcopy(data), mode='loss')
    saved = copy.deepcopy(model.state_dict())
    global_before = torch.get_rng_state()
    first = model(**copy.deepcopy(data), mode='loss')
    torch.set_rng_state(global_before)
    model.load_state_dict(saved)
    again = model(**copy.deepcopy(data), mode='loss')
    for key in (k for k in first if k.startswith('loss_noise')):
        assert torch.equal(first[key], again[key]), key
    # ... and a third call draws something else: the state moved on.
    third = model(**copy.deepcopy(data), mode='loss')
    assert not torch.equal(third['loss_noise_p3'], again['loss_noise_p3'])


def test_a_model_without_a_drawing_loss_has_no_generator_state(tmp_path):
    model = MODELS.build(_cfg(tmp_path, vkd=dict(type='VkDLoss')))
    assert model.distill_generator is None
    assert not any(key.endswith('_extra_state') for key in model.state_dict())


def test_linear_adapter_starts_as_conv_1x1_and_linear_and_maps_like_them():
    torch.manual_seed(3)
    conv = nn.Conv2d(5, 7, kernel_size=1)
    torch.manual_seed(3)
    adapter = LinearAdapter(5, 7)
    assert torch.equal(adapter.weight, conv.weight[:, :, 0, 0])
    assert torch.equal(adapter.bias, conv.bias)
    x = torch.randn(2, 5, 4, 3)
    torch.testing.assert_close(adapter(x), conv(x))
    flat = torch.randn(6, 5)
    torch.testing.assert_close(adapter(flat), flat @ conv.weight[:, :, 0, 0].T + conv.bias)
    with pytest.raises(ValueError, match=r'norm=True\) maps \(N, C\) inputs'):
        LinearAdapter(5, 7, norm=True)(x)

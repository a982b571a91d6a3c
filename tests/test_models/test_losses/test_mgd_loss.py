"""MGDLoss against the paper's equation written here in plain torch (float64, values and
gradients); the mask's drop rate over many draws; its generator across a state-dict save / load."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.registry import init_default_scope

from vkd_mmdet.models.losses import MGDLoss
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg


def _reference(loss, student, teacher, keep, valid, alpha):
    """alpha * sum over real cells of (G(f(s) * M) - t)^2 / N, G = conv3x3, ReLU, conv3x3."""
    if loss.projector.__class__.__name__ == 'LinearAdapter':
        student = F.conv2d(student, loss.projector.weight[:, :, None, None], loss.projector.bias)
    first, _, second = loss.generation
    hidden = torch.relu(F.conv2d(student * keep, first.weight, first.bias, padding=1))
    generated = F.conv2d(hidden, second.weight, second.bias, padding=1)
    return alpha * ((generated - teacher)**2 * valid).sum() / student.shape[0]


@pytest.mark.parametrize('alpha, lam', [(2e-5, 0.65), (5e-7, 0.45)], ids=['one', 'two-stage'])
@pytest.mark.parametrize('channels', [(5, 5), (3, 5)], ids=['same', 'adapter'])
def test_matches_the_paper_given_the_generators_mask(alpha, lam, channels):
    c_s, c_t = channels
    torch.manual_seed(0)
    projector = None if c_s == c_t else dict(type='LinearAdapter')
    loss = MGDLoss(c_s, c_t, alpha_mgd=alpha, lambda_mgd=lam, projector=projector).double()
    student = torch.randn(2, c_s, 6, 7, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, c_t, 6, 7, dtype=torch.float64)
    valid = torch.ones(2, 1, 6, 7, dtype=torch.bool)
    valid[1, :, 4:] = False
    valid[1, :, :, 5:] = False
    generator = torch.Generator().manual_seed(11)
    # The mask the documented draw gives: rand (N, 1, H, W) on the CPU, dropped below lambda.
    keep = torch.rand((2, 1, 6, 7), generator=torch.Generator().manual_seed(11)) >= lam
    got = loss(student, teacher, valid, generator)
    want = _reference(loss, student, teacher, keep, valid, alpha)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    params = [student] + list(loss.parameters())
    for grad, ref in zip(torch.autograd.grad(got, params, retain_graph=True),
                         torch.autograd.grad(want, params)):
        torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-20)
    # padding ignored: the error on padded cells does not count; with it, it does
    loss.ignore_padding = False
    everything = loss(student, teacher, valid, torch.Generator().manual_seed(11))
    torch.testing.assert_close(everything, _reference(loss, student, teacher, keep, 1.0, alpha))
    assert everything > got


@pytest.mark.parametrize('lam', [0.65, 0.45, 0.0])
def test_drop_rate_is_lambda_over_many_draws(lam):
    loss = MGDLoss(2, 2, lambda_mgd=lam)
    generator = torch.Generator().manual_seed(0)
    draws = [loss.keep_mask(torch.empty(8, 2, 32, 32), generator) for _ in range(50)]
    keep = torch.stack(draws)
    assert keep.shape == (50, 8, 1, 32, 32) and keep.dtype == torch.bool
    count = keep.numel()
    dropped = (~keep).double().mean().item()
    sigma = math.sqrt(lam * (1 - lam) / count)  # binomial standard deviation of the rate
    assert abs(dropped - lam) <= 5 * sigma + 1e-12, (dropped, lam, sigma)
    if lam:  # successive draws differ
        assert not torch.equal(draws[0], draws[1])


def test_a_dropped_cell_loses_every_channel():
    loss = MGDLoss(4, 4, lambda_mgd=0.5)
    seen = []
    loss.generation[0].register_forward_hook(lambda module, args, out: seen.append(args[0]))
    loss(torch.ones(2, 4, 5, 6), torch.zeros(2, 4, 5, 6), None,
         torch.Generator().manual_seed(0))
    masked = seen[0]
    assert torch.equal(masked, masked[:, :1].expand_as(masked))
    assert 0 < masked.mean() < 1 and set(masked.unique().tolist()) == {0.0, 1.0}


# Every device this machine has (CUDA where present): the draw never depends on the feature's
# device or dtype, so a run resumed elsewhere draws the same masks.
FEATURES = [dict(dtype=torch.float64)] + ([dict(device='cuda')] if torch.cuda.is_available()
                                          else [])


@pytest.mark.parametrize('feature', FEATURES, ids=str)
def test_mask_is_the_cpu_draw_whatever_the_feature(feature):
    loss = MGDLoss(2, 2)
    on_cpu = loss.keep_mask(torch.empty(2, 2, 9, 9), torch.Generator().manual_seed(3))
    other = loss.keep_mask(torch.empty(2, 2, 9, 9, **feature), torch.Generator().manual_seed(3))
    assert other.device == torch.empty(0, **feature).device
    assert torch.equal(other.cpu().to(on_cpu.dtype), on_cpu)


@pytest.mark.parametrize('kwargs, match', [
    (dict(alpha_mgd=-1e-5), 'alpha_mgd must be a finite number >= 0'),
    (dict(lambda_mgd=1.0), r'lambda_mgd is the probability .* \[0, 1\)'),
    (dict(lambda_mgd=-0.1), 'lambda_mgd'),
    (dict(in_channels=3), 'projector=None maps nothing'),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(in_channels=2, out_channels=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MGDLoss(**args)


def _tiny_mgd_distiller(teacher_ckpt, teacher, student, seed):
    torch.manual_seed(seed)
    return MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher, teacher_ckpt=teacher_ckpt,
        distill_losses=dict(mgd=dict(type='MGDLoss', in_channels=16, out_channels=16))))


def _mgd_losses(model, batch):
    losses = model(**batch, mode='loss')
    return {key: value.detach() for key, value in losses.items() if key.startswith('loss_mgd')}


def test_masks_resume_exactly_from_the_distillers_state_dict(tmp_path):
    init_default_scope('mmdet')
    student, teacher = (tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py',
                                          base_channels=base, neck_channels=16)
                        for base in (8, 12))
    ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'), seed=1)
    model = _tiny_mgd_distiller(ckpt, teacher, student, seed=0)
    data = demo_mm_inputs(2, [(3, 64, 96), (3, 48, 64)], num_items=[2, 1], num_classes=3)
    batch = model.data_preprocessor(data, True)
    first = _mgd_losses(model, batch)
    state = model.state_dict()
    assert 'distill_generator._extra_state' in state

    resumed = _tiny_mgd_distiller(ckpt, teacher, student, seed=5)
    resumed.load_state_dict(state)
    second = _mgd_losses(model, batch)
    assert len(second) == 5
    # Same weights, same batch: only the masks changed between the two steps ...
    assert all(second[key] != first[key] for key in first)
    # ... and the copy loaded from the state dict draws the second step's masks exactly.
    assert _mgd_losses(resumed, batch) == second

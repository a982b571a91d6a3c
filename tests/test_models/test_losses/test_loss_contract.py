"""One contract over every distillation loss: zero weight gives zero, ``loss_weight`` scales
linearly, inputs of the wrong shape raise a ValueError."""
import pytest
import torch

from vkd_mmdet.models.losses import (
    CWDLoss,
    DiffKDLoss,
    FGDLoss,
    FitNetLoss,
    MGDLoss,
    NDLoss,
    PKDLoss,
    RTKLoss,
    SRDLoss,
    VkDLoss,
)

SIZES = [(6, 6), (3, 3)]
LINEAR = dict(type='LinearAdapter')


def _fpn(c_s=4, c_t=8, size=(6, 6)):
    return torch.randn(2, c_s, *size), torch.randn(2, c_t, *size), \
        torch.ones(2, 1, *size, dtype=torch.bool)


def _fpn_boxes(c_s=4, c_t=8):
    """An FPN pair of stride 8 with one box per image (FGD's extras)."""
    boxes = [torch.tensor([[4.0, 8.0, 30.0, 40.0]]), torch.tensor([[0.0, 0.0, 16.0, 16.0]])]
    return _fpn(c_s, c_t) + (8, boxes)


def _fpn_levels(c_s=4, c_t=8):
    levels = [_fpn(c_s, c_t, s) for s in SIZES]
    return tuple(list(part) for part in zip(*levels))


def _roi(tmp_path):
    path = tmp_path / 'centers.pth'
    torch.save({'centers': torch.randn(4, 8)}, path)
    return dict(num_classes=3, class_centers=str(path))


# name -> (build(loss_weight, tmp_path), good inputs(), bad inputs())
CASES = {
    'VkDLoss': (lambda w, _: VkDLoss(4, 8, loss_weight=w), _fpn, lambda: _fpn(c_t=6)[:2]),
    'FitNetLoss': (lambda w, _: FitNetLoss(4, 8, loss_weight=w), _fpn,
                   lambda: _fpn(c_t=6)[:2]),
    'CWDLoss': (lambda w, _: CWDLoss(4, 8, loss_weight=w, projector=LINEAR), _fpn,
                lambda: _fpn(c_t=6)[:2]),
    'PKDLoss': (lambda w, _: PKDLoss(4, 8, loss_weight=w, projector=LINEAR), _fpn,
                lambda: _fpn(c_t=6)[:2]),
    'FGDLoss': (lambda w, _: FGDLoss(4, 8, loss_weight=w, projector=LINEAR),
                _fpn_boxes, lambda: _fpn_boxes(c_t=6)[:2]),
    'MGDLoss': (lambda w, _: MGDLoss(4, 8, loss_weight=w, projector=LINEAR),
                _fpn, lambda: _fpn(c_t=6)[:2]),
    'SRDLoss': (lambda w, _: SRDLoss(4, 8, loss_weight=w), _fpn, lambda: _fpn(c_t=6)[:2]),
    'DiffKDLoss': (lambda w, _: DiffKDLoss(4, 8, loss_weight=w), _fpn,
                   lambda: _fpn(size=(6, 6))[:1] + (torch.randn(2, 8, 5, 5),)),
    'RTKLoss': (lambda w, _: RTKLoss(4, 8, num_levels=2, qk_dim=8, loss_weight=w),
                _fpn_levels, lambda: tuple(part[:1] for part in _fpn_levels()[:2])),
    'NDLoss': (lambda w, tmp: NDLoss(in_channels=8, out_channels=8, loss_weight=w,
                                     **_roi(tmp)),
               lambda: (torch.randn(5, 8), torch.randn(5, 8), torch.tensor([0, 1, 2, 3, 3])),
               lambda: (torch.randn(5, 8), torch.randn(4, 8), torch.tensor([0, 1, 2, 3, 3]))),
}


def _total(out):
    return sum(out.values()) if isinstance(out, dict) else out


def _run(name, weight, tmp_path, inputs):
    build = CASES[name][0]
    torch.manual_seed(1)
    loss = build(weight, tmp_path)
    torch.manual_seed(2)
    return loss(*inputs)


@pytest.mark.parametrize('name', sorted(CASES))
def test_loss_weight_scales_linearly(name, tmp_path):
    inputs = CASES[name][1]()
    one = _run(name, 1.0, tmp_path, inputs)
    three = _run(name, 3.0, tmp_path, inputs)
    zero = _run(name, 0.0, tmp_path, inputs)
    if isinstance(one, dict):
        assert set(one) == set(three) == set(zero)
    assert torch.allclose(_total(three), 3 * _total(one), rtol=1e-5, atol=1e-6)
    assert _total(zero).item() == 0
    assert _total(one).dim() == 0 and torch.isfinite(_total(one)) and _total(one).item() != 0


@pytest.mark.parametrize('name', sorted(CASES))
def test_bad_input_raises(name, tmp_path):
    """Named by the loss; student / teacher mismatches through the one shape check."""
    loss = CASES[name][0](1.0, tmp_path)
    problem = 'teacher levels' if name == 'RTKLoss' else 'must both be'
    with pytest.raises(ValueError, match=rf'^{name}: .*{problem}'):
        loss(*CASES[name][2]())


@pytest.mark.parametrize('name', sorted(CASES))
def test_gradient_reaches_the_student(name, tmp_path):
    inputs = list(CASES[name][1]())
    student = inputs[0]
    leaves = student if isinstance(student, list) else [student]
    for leaf in leaves:
        leaf.requires_grad_()
    _total(_run(name, 1.0, tmp_path, inputs)).backward()
    assert all(leaf.grad is not None and leaf.grad.abs().sum() > 0 for leaf in leaves)

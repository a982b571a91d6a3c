"""NDLoss against a per-sample loop, its norm / direction invariants and centre loading."""
import pytest
import torch

from vkd_mmdet.models.losses import NDLoss


def _centers_file(tmp_path, num_classes=3, width=5):
    centers = torch.randn(num_classes + 1, width)
    path = tmp_path / 'centers.pth'
    torch.save({'centers': centers, 'counts': torch.ones(num_classes + 1)}, path)
    return centers, str(path)


def test_matches_per_sample_loop(tmp_path):
    centers, path = _centers_file(tmp_path)
    loss = NDLoss(3, 5, 5, class_centers=path, loss_weight=1.5)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, 3, 3, 1])
    expected = 0.
    for s, t, y in zip(student, teacher, labels):  # KD++'s DirectNormLoss.project_center
        e_c = centers[y] / centers[y].norm()
        expected += 1 - torch.dot(s, e_c) / max(s.norm(), t.norm())
    assert torch.allclose(loss(student, teacher, labels), 1.5 * expected / 6, atol=1e-6)
    assert torch.equal(loss.class_centers, centers)


def test_norm_term_active_only_while_student_is_shorter(tmp_path):
    centers, path = _centers_file(tmp_path)
    loss = NDLoss(3, 5, 5, class_centers=path)
    labels = torch.tensor([1])
    direction = centers[1] / centers[1].norm()
    teacher = 4 * torch.randn(1, 5).sign()  # norm 8.9
    # Student along the centre: shorter than the teacher -> loss 1 - ||s||/||t|| > 0,
    # and the gradient pushes the norm up; longer -> loss 0 whatever the norm.
    short = (2 * direction)[None].requires_grad_()
    value = loss(short, teacher, labels)
    assert value.item() == pytest.approx(1 - 2 / teacher.norm().item(), abs=1e-5)
    value.backward()
    assert (short.grad @ direction).item() < 0
    long = (20 * direction)[None].requires_grad_()
    value = loss(long, teacher, labels)
    assert value.item() == pytest.approx(0, abs=1e-6)
    # Longer than the teacher: scale-invariant 1 - cos, gradient orthogonal to s.
    other = (20 * torch.nn.functional.normalize(torch.randn(1, 5))).requires_grad_()
    loss(other, teacher, labels).backward()
    assert abs((other.grad * other).sum().item()) < 1e-5


def test_projector_when_widths_differ(tmp_path):
    _, path = _centers_file(tmp_path, width=5)
    loss = NDLoss(3, 8, 5, class_centers=path)
    assert isinstance(loss.projector[0], torch.nn.BatchNorm1d)
    assert loss(torch.randn(4, 8), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])).dim() == 0


def test_missing_or_wrong_centres_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match='compute_class_centers'):
        NDLoss(3, 5, 5, class_centers=str(tmp_path / 'absent.pth'))
    _, path = _centers_file(tmp_path, num_classes=4)
    with pytest.raises(ValueError, match=r'\(4, 5\)'):
        NDLoss(3, 5, 5, class_centers=path)
    with pytest.raises(RuntimeError, match='all zero'):
        NDLoss(3, 5, 5)(torch.randn(2, 5), torch.randn(2, 5), torch.tensor([0, 3]))


def test_empty_rois_give_zero(tmp_path):
    _, path = _centers_file(tmp_path)
    out = NDLoss(3, 5, 5, class_centers=path)(torch.randn(0, 5), torch.randn(0, 5),
                                             torch.zeros(0, dtype=torch.long))
    assert out.item() == 0

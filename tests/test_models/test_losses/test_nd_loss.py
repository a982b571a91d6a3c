"""NDLoss against a per-sample loop, its norm / direction invariants and centre loading."""
import pytest
import torch
import torch.nn.functional as F

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


def test_adapter_when_widths_differ(tmp_path):
    _, path = _centers_file(tmp_path, width=5)
    loss = NDLoss(3, 8, 5, class_centers=path,
                  projector=dict(type='LinearAdapter', norm=True, dropout=0.5))
    assert isinstance(loss.projector.pre[0], torch.nn.BatchNorm1d)
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


def test_classification_without_background_matches_per_sample_loop(tmp_path):
    """background=False: K centres (no background row); labels index them directly. Per sample,
    by hand: the loss divides by ||t|| (and grows ||s||) only while ||s|| < ||t||."""
    centers = torch.randn(4, 6)
    path = tmp_path / 'cls_centers.pth'
    torch.save({'centers': centers, 'counts': torch.ones(4)}, path)
    loss = NDLoss(4, 6, 6, class_centers=str(path), loss_weight=2.0, background=False)
    assert loss.class_centers.shape == (4, 6)
    labels = torch.tensor([0, 1, 2, 3, 3, 0])
    teacher = torch.randn(6, 6) * 3
    # Rows 0-2 shorter than their teacher rows, rows 3-5 longer.
    scale = torch.tensor([0.2, 0.5, 0.9, 1.5, 3.0, 10.0])[:, None]
    student = (F.normalize(torch.randn(6, 6), dim=1) * teacher.norm(dim=1, keepdim=True)
               * scale).requires_grad_()
    value = loss(student, teacher, labels)
    value.backward()

    expected, radial = 0., []
    for s, t, y in zip(student.detach(), teacher, labels):
        e_c = centers[y] / centers[y].norm()
        if s.norm() < t.norm():
            term = 1 - torch.dot(s, e_c) / t.norm()
            d_term = -e_c / t.norm()  # d/ds: linear in s
        else:
            term = 1 - torch.dot(s, e_c) / s.norm()  # 1 - cos(s, c_y)
            d_term = -(e_c - torch.dot(s, e_c) * s / s.norm() ** 2) / s.norm()
        expected += term
        radial.append(torch.dot(d_term, s / s.norm()) * 2.0 / 6)
    assert torch.allclose(value, 2.0 * expected / 6, atol=1e-6)
    radial = torch.stack(radial)
    grad_radial = (student.grad * F.normalize(student.detach(), dim=1)).sum(dim=1)
    torch.testing.assert_close(grad_radial, radial, atol=1e-6, rtol=1e-5)
    # The norm term: a radial pull while shorter (towards the centre when s . c_y > 0), none once
    # longer than the teacher.
    assert grad_radial[3:].abs().max() < 1e-6
    along = (student.detach()[:3] * F.normalize(centers[labels[:3]], dim=1)).sum(dim=1)
    assert torch.equal(grad_radial[:3] < 0, along > 0)


def test_classification_centres_need_num_classes_rows(tmp_path):
    _, path = _centers_file(tmp_path, num_classes=3)  # 4 rows: a detection file
    with pytest.raises(ValueError, match=r'num_classes \+ background.*\(3, 5\)'):
        NDLoss(3, 5, 5, class_centers=path, background=False)
    assert NDLoss(4, 5, 5, class_centers=path, background=False).class_centers.shape == (4, 5)

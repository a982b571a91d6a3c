"""compare_detections: one-to-one matching by label and IoU, differences of the matched pairs."""
import pytest
import torch
from mmengine.structures import InstanceData

from vkd_mmdet.apis.detection_agreement import (
    DetectionAgreement,
    compare_detections,
    merge_agreements,
)


def detections(boxes, scores, labels) -> InstanceData:
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores), labels=torch.tensor(labels))


REFERENCE = detections([[0, 0, 10, 10], [20, 20, 40, 30], [0, 0, 10, 10]],
                       [0.9, 0.8, 0.3], [0, 1, 2])


def test_a_shuffled_perturbed_copy_is_matched_and_its_differences_measured():
    order = [2, 0, 1]
    ours = detections(REFERENCE.bboxes[order] + torch.tensor([[0, 0, 0, 0.25], [0, 0, 0, 0],
                                                               [0.5, 0, 0, 0]]),
                      REFERENCE.scores[order] + torch.tensor([0, 1e-3, 0]),
                      REFERENCE.labels[order])
    agreement = compare_detections(ours, REFERENCE)
    assert agreement == DetectionAgreement(3, 3, 3, 0.5, pytest.approx(1e-3, abs=1e-7))
    assert agreement.agrees(box_atol=0.5, score_atol=1.1e-3)
    assert not agreement.agrees(box_atol=0.4, score_atol=1.1e-3)
    assert not agreement.agrees(box_atol=0.5, score_atol=1e-4)


def test_another_label_or_a_neighbour_box_is_not_a_match():
    # the same box as the reference's first, but labelled as its third's class twice: only one
    # of them can take the third; a box shifted by half its size (IoU 1/3) matches nothing
    ours = detections([[0, 0, 10, 10], [0, 0, 10, 10], [30, 20, 50, 30]], [0.9, 0.3, 0.8],
                      [2, 2, 1])
    agreement = compare_detections(ours, REFERENCE)
    assert (agreement.num_ours, agreement.num_reference, agreement.num_matched) == (3, 3, 1)
    assert agreement.matched_fraction == pytest.approx(1 / 3)
    assert agreement.agrees(1.0, 1.0, min_matched=0.3)
    assert not agreement.agrees(1.0, 1.0)


def test_empty_sides_and_bad_arguments():
    empty = detections(torch.zeros(0, 4), [], [])
    assert compare_detections(empty, empty) == DetectionAgreement(0, 0, 0, 0.0, 0.0)
    assert compare_detections(empty, empty).agrees(0, 0)
    assert compare_detections(empty, REFERENCE).num_matched == 0
    with pytest.raises(ValueError, match='min_iou'):
        compare_detections(REFERENCE, REFERENCE, min_iou=0)
    with pytest.raises(ValueError, match='at least one image'):
        merge_agreements([])


def test_merge_sums_counts_and_keeps_the_largest_differences():
    merged = merge_agreements([DetectionAgreement(3, 2, 2, 0.1, 1e-4),
                               DetectionAgreement(1, 1, 1, 0.3, 1e-5)])
    assert merged == DetectionAgreement(4, 3, 3, 0.3, 1e-4)


def test_boxes_of_zero_size_pair_by_distance():
    # clipped at the image border to zero height: no IoU, still the same detection
    reference = detections([[5, 64, 20, 64], [0, 0, 0, 9]], [0.5, 0.4], [1, 1])
    ours = detections([[0, 0, 0, 9.1], [5, 64, 20.2, 64]], [0.4, 0.5], [1, 1])
    agreement = compare_detections(ours, reference)
    assert agreement == DetectionAgreement(2, 2, 2, pytest.approx(0.2, abs=1e-6), 0.0)
    far = detections([[0, 0, 0, 10]], [0.4], [1])  # 1 px off: not the same box
    assert compare_detections(far, reference).num_matched == 0

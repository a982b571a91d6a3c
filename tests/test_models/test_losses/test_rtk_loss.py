"""RTKLoss: AFD reference when every link is kept, representative-link selection, masks."""
import math

import pytest
import torch
import torch.nn.functional as F

from vkd_mmdet.models.losses import RTKLoss

SIZES = [(8, 8), (4, 4), (2, 2)]


def _levels(c=6, n=3):
    return ([torch.randn(n, c, *s) for s in SIZES], [torch.randn(n, c, *s) for s in SIZES])


def _reference(loss, students, teachers, keep=None):
    """AFD written out per sample and level pair; ``keep[b][i]``: allowed student levels."""
    n, levels = students[0].shape[0], len(students)
    q = torch.stack([loss.query_layers[i](teachers[i].mean((2, 3))) for i in range(levels)], 1)
    k = torch.stack([loss.key_layers[j](students[j].mean((2, 3))) for j in range(levels)], 1)
    bk = loss.bilinear(k.reshape(n * levels, -1)).reshape(n, levels, levels, -1)
    total = 0.
    for i in range(levels):
        for b in range(n):
            logits = torch.stack([
                (bk[b, j, i] @ q[b, i] + loss.teacher_embedding[i] @ loss.student_embedding[j])
                / math.sqrt(loss.qk_dim) for j in range(levels)])
            if keep is not None:
                logits = torch.where(torch.isin(torch.arange(levels), keep[b][i]), logits,
                                     torch.tensor(float('-inf')))
            att = logits.softmax(0)
            v_t = teachers[i][b].pow(2).mean(0).flatten()
            v_t = v_t / v_t.norm()
            for j in range(levels):
                m = F.adaptive_avg_pool2d(students[j][b:b + 1].pow(2).mean(1, keepdim=True),
                                          SIZES[i]).flatten()
                total = total + att[j] * ((m / m.norm() - v_t)**2).mean() / n
    return total


def test_all_keys_is_afd():
    students, teachers = _levels()
    loss = RTKLoss(6, 6, num_levels=3, qk_dim=8, num_keys=3, loss_weight=2.0)
    assert torch.allclose(loss(students, teachers), 2.0 * _reference(loss, students, teachers),
                          rtol=1e-4)


def test_representative_links_are_the_most_similar_maps():
    students, teachers = _levels()
    loss = RTKLoss(6, 6, num_levels=3, qk_dim=8, num_keys=1)
    keep = []
    for b in range(3):
        keep.append([])
        for i in range(3):
            v_t = teachers[i][b].pow(2).mean(0).flatten()
            sims = []
            for j in range(3):
                m = F.adaptive_avg_pool2d(students[j][b:b + 1].pow(2).mean(1, keepdim=True),
                                          SIZES[i]).flatten()
                sims.append(F.cosine_similarity(m, v_t, dim=0))
            keep[b].append(torch.stack(sims).argmax().reshape(1))
    expected = _reference(loss, students, teachers, keep)
    assert torch.allclose(loss(students, teachers) / 200.0, expected, rtol=1e-4)


def test_identical_maps_give_zero_with_one_key():
    students, _ = _levels()
    loss = RTKLoss(6, 6, num_levels=3, qk_dim=8, num_keys=1)
    # Each teacher level's own student level is its most similar map (cosine 1).
    assert loss(students, [s.clone() for s in students]).item() == pytest.approx(0, abs=1e-6)


def test_padded_cells_do_not_enter_the_maps():
    students, teachers = _levels()
    masks = [torch.ones(3, 1, *s, dtype=torch.bool) for s in SIZES]
    for m, (h, _) in zip(masks, SIZES):
        m[0, :, h // 2:] = False
    loss = RTKLoss(6, 6, num_levels=3, qk_dim=8, num_keys=2)
    # Fixed attention logits: only the maps (values) remain, and they must ignore padding.
    loss.attention_logits = lambda s, t: torch.zeros(3, 3, 3)
    before = loss(students, teachers, masks)
    teachers[0][0, :, 6:] += 50.
    students[1][0, :, 3:] += 50.
    assert torch.allclose(loss(students, teachers, masks), before)
    assert not torch.allclose(loss(students, teachers), before)


def test_wrong_level_count_raises():
    students, teachers = _levels()
    with pytest.raises(ValueError, match='num_levels'):
        RTKLoss(6, 6, num_levels=3, qk_dim=8)(students[:2], teachers[:2])
    with pytest.raises(ValueError, match='num_keys'):
        RTKLoss(6, 6, num_levels=3, num_keys=4)

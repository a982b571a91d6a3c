"""KD++ on classification: tools/compute_class_centers.py on a generated image folder (class means
vs a hand computation, interrupted and resumed), then one train step of
configs/vkd_cls/kdpp_resnet18_resnet34_in1k.py on those centres with ND and the warmed-up KD
recomputed by hand."""
import os.path as osp
import sys

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS
from test_cls_configs import ROOT, build, tiny_config
from tool_scripts import load_tool, run_interrupted

from vkd_mmdet.testing.tiny_classifiers import IMG, NUM_CLASSES, batch
from vkd_mmdet.utils import resolve_model_cfg

CONFIG = osp.join(ROOT, 'configs', 'vkd_cls', 'kdpp_resnet18_resnet34_in1k.py')


def _image_folder(root):
    """Class ``c<k>`` holds 1 or 2 RGB images (unequal counts: a sum is not a mean)."""
    rng = np.random.default_rng(0)
    images = []
    for label in range(NUM_CLASSES):
        for index in range(1 + label % 2):
            rgb = rng.integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
            mmcv.imwrite(rgb[..., ::-1], str(root / f'c{label}' / f'{index}.png'))  # BGR file
            images.append((rgb, label))
    return images


def test_tool_class_means_then_train_step(tmp_path, monkeypatch):
    cfg = tiny_config(CONFIG, tmp_path)
    images = _image_folder(tmp_path / 'images')
    cfg.train_dataloader.dataset = dict(
        type='CustomDataset', data_root=str(tmp_path / 'images'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    out = str(tmp_path / 'work_dirs' / 'centres.pth')
    cfg.model.feature_losses.nd.class_centers = out
    cfg.dump(str(tmp_path / 'kdpp.py'))

    tool = load_tool('compute_class_centers.py')
    args = ['compute_class_centers.py', str(tmp_path / 'kdpp.py'), '--batch-size', '2',
            '--num-workers', '0', '--save-interval', '1', '--device', 'cpu']
    # Interrupted after two batches (4 images), then resumed.
    run_interrupted(monkeypatch, tool, args, 'embed_images', after_calls=2)
    assert torch.load(out + '.partial', weights_only=True)['done'] == 4
    monkeypatch.setattr(sys, 'argv', args + ['--resume'])
    tool.main()
    result = torch.load(out, weights_only=True)
    assert not osp.exists(out + '.partial')
    assert result['classes'] == [f'c{k}' for k in range(NUM_CLASSES)]  # no background row

    # By hand: the teacher's pooled feature of each RGB image, normalised with the config's
    # mean / std, averaged per class.
    teacher = MODELS.build(resolve_model_cfg(cfg.model.teacher, 'teacher'))
    teacher.load_state_dict(torch.load(cfg.model.teacher_ckpt, weights_only=True)['state_dict'])
    teacher.eval()
    mean = torch.tensor(cfg.data_preprocessor.mean)[:, None, None]
    std = torch.tensor(cfg.data_preprocessor.std)[:, None, None]
    per_class = {label: [] for label in range(NUM_CLASSES)}
    with torch.no_grad():
        for rgb, label in images:
            x = (torch.from_numpy(rgb).permute(2, 0, 1).float() - mean) / std
            feature = teacher.neck(teacher.backbone(x[None]))[-1][0]
            per_class[label].append(feature)
    expected = torch.stack([torch.stack(per_class[k]).mean(0) for k in range(NUM_CLASSES)])
    torch.testing.assert_close(result['counts'],
                               torch.tensor([1. + k % 2 for k in range(NUM_CLASSES)]))
    torch.testing.assert_close(result['centers'], expected, atol=1e-5, rtol=1e-4)

    # One train step on these centres, in epoch 1 of 100: KD at 2.5 * min(1, 1 / 5).
    hub = MessageHub.get_instance(f'kdpp_epoch1_{tmp_path}')
    hub.update_info('epoch', 1)
    hub.update_info('max_epochs', 100)
    model = build(cfg)
    torch.testing.assert_close(model.feature_losses.nd.class_centers, result['centers'])
    data = batch()
    inputs = model.student.data_preprocessor(data, True)['inputs']
    labels = torch.tensor([sample.gt_label.item() for sample in data['data_samples']])
    with torch.no_grad():
        s = model.student.neck(model.student.backbone(inputs))[-1]
        t = model.teacher.neck(model.teacher.backbone(inputs))[-1]  # same normalisation
        s_logits, t_logits = model.student.head.fc(s), model.teacher.head.fc(t)
    nd = 0.
    for s_i, t_i, y in zip(s, t, labels):
        e_c = result['centers'][y] / result['centers'][y].norm()
        nd += 1 - torch.dot(s_i, e_c) / max(s_i.norm(), t_i.norm())
    kl = (t_logits.softmax(1) * (t_logits.log_softmax(1) - s_logits.log_softmax(1))).sum(1)
    losses = model.train_step(data, build_optim_wrapper(model, cfg.optim_wrapper))
    assert set(losses) == {'loss', 'loss_cls', 'loss_nd', 'loss_kd'}
    torch.testing.assert_close(losses['loss_nd'], 1.0 * nd / len(labels), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses['loss_kd'], 2.5 * 0.2 * kl.mean(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses['loss_cls'], F.cross_entropy(s_logits, labels),
                               atol=1e-5, rtol=1e-4)
    MessageHub.get_instance(f'kdpp_after_{tmp_path}')  # no epoch left for later tests


def test_tool_refuses_a_background_row_for_classification(tmp_path, monkeypatch):
    cfg = tiny_config(CONFIG, tmp_path)
    cfg.model.feature_losses.nd.background = True
    cfg.dump(str(tmp_path / 'kdpp.py'))
    monkeypatch.setattr(sys, 'argv', ['compute_class_centers.py', str(tmp_path / 'kdpp.py')])
    with pytest.raises(ValueError, match='background=False'):
        load_tool('compute_class_centers.py').main()

"""The student's batch augmentations run once per step and reach the teacher too: a YOLOX pair
with BatchSyncRandomResize trains through size changes, each side normalised its own way."""
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.testing import mmdet_model_cfg, save_random_checkpoint

YOLOX = 'yolox/yolox_s_8xb8-300e_coco.py'


def _tiny_yolox(widen: float, teacher: bool):
    cfg = mmdet_model_cfg(YOLOX)
    cfg.backbone.update(deepen_factor=0.33, widen_factor=widen)
    width = int(256 * widen)
    cfg.neck.update(in_channels=[width, 2 * width, 4 * width], out_channels=width,
                    num_csp_blocks=1)
    cfg.bbox_head.update(in_channels=width, feat_channels=width, num_classes=3,
                         stacked_convs=1)
    if teacher:  # another normalisation than the student's (none), and its own augment
        cfg.data_preprocessor.update(mean=[10., 20., 30.], std=[50., 60., 70.])
    else:  # a new size drawn after every step, from 64 to 128 px
        cfg.data_preprocessor.batch_augments[0].update(random_size_range=(64, 128), interval=1)
    return cfg


def test_a_yolox_pair_with_batch_sync_random_resize_trains_through_size_changes(tmp_path):
    init_default_scope('mmdet')
    teacher = _tiny_yolox(0.25, teacher=True)
    model = MODELS.build(dict(
        type='DetectionDistiller', student=_tiny_yolox(0.125, teacher=False), teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 't.pth')),
        distill_losses=dict(vkd=dict(type='VkDLoss')))).train()
    seen = []
    forward = model.teacher_forward
    model.teacher_forward = lambda fn, inputs: seen.append(inputs) or forward(fn, inputs)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    hub = MessageHub.get_current_instance()
    sizes = []
    for step in range(4):
        hub.update_info('iter', step)
        torch.manual_seed(step)
        data = demo_mm_inputs(2, [(3, 96, 96), (3, 64, 96)], num_items=[2, 1], num_classes=3)
        raw = torch.stack([F.pad(img, (0, 96 - img.shape[2], 0, 96 - img.shape[1]))
                           for img in data['inputs']]).float()
        log = model.train_step(data, optim)
        assert all(torch.isfinite(v) for v in log.values())
        # The teacher's batch is its own normalisation of the same raw images, resized to the
        # student's size of this step (both padded to 96 first: pad value 0 after normalising);
        # had the student seen another size, the distiller would have refused the pair.
        size = tuple(seen[-1].shape[2:])
        sizes.append(size)
        mean = torch.tensor([10., 20., 30.])[:, None, None]
        std = torch.tensor([50., 60., 70.])[:, None, None]
        normalised = (raw - mean) / std
        normalised[1, :, 64:, :] = 0  # the second image is 64 x 96
        expected = normalised if size == (96, 96) else F.interpolate(
            normalised, size=size, mode='bilinear', align_corners=False)
        torch.testing.assert_close(seen[-1], expected, rtol=1e-5, atol=1e-5)
    assert len(set(sizes)) > 1, sizes  # the size did change between steps

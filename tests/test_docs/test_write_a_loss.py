"""docs/write_a_loss.md: its worked example is a new loss added by its code and declaration
alone; it builds into a DetectionDistiller beside VkD and trains a step."""
import copy
import re
from pathlib import Path

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

GUIDE = Path(__file__).resolve().parents[2] / 'docs' / 'write_a_loss.md'
RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


def _example_namespace() -> dict:
    """The guide's first python block, executed as a module would be."""
    block = re.search(r'```python\n(.*?)```', GUIDE.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, str(GUIDE), 'exec'), namespace)
    return namespace


def test_the_guide_example_trains_beside_vkd(tmp_path):
    init_default_scope('mmdet')
    if 'BoxMSELoss' in MODELS.module_dict:  # a re-run in one process registers it again
        MODELS.module_dict.pop('BoxMSELoss')
    loss_cls = _example_namespace()['BoxMSELoss']
    student = tiny_detector_cfg(RETINANET, neck_channels=16)
    teacher = tiny_detector_cfg(RETINANET, base_channels=12, neck_channels=32)
    model = MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 't.pth')),
        distill_losses=dict(vkd=dict(type='VkDLoss', loss_weight=4.0),
                            box=dict(type='BoxMSELoss', loss_weight=1.0))))
    modules = model.distill_losses['box']
    assert all(isinstance(m, loss_cls) for m in modules)
    # in / out channels came from the necks, one module per paired level
    assert [m.projector.weight.shape for m in modules] == [torch.Size([32, 16])] * len(modules)

    torch.manual_seed(0)
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3)
    # What the loss received, recomputed independently: the same MSE inside the boxes.
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(
        (mod.projector.weight.detach().clone(), mod.projector.bias.detach().clone(), args, kwargs,
         out)), with_kwargs=True) for m in modules]
    log = model.train_step(copy.deepcopy(data), OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1e-3)))
    for hook in hooks:
        hook.remove()
    assert {f'loss_box_p{k}' for k in range(3, 8)} <= set(log)
    assert len(seen) == len(modules)
    for weight, bias, (student, teacher), kwargs, out in seen:
        assert set(kwargs) == {'gt_bboxes', 'stride', 'valid_mask'}
        stride, mask = kwargs['stride'], kwargs['valid_mask']
        assert student.shape[2:] == mask.shape[2:]
        inside = torch.zeros_like(mask)
        for image, boxes in enumerate(kwargs['gt_bboxes']):
            for x1, y1, x2, y2 in boxes.tolist():
                rows = slice(int(y1 / stride), int(y2 / stride) + 1)
                cols = slice(int(x1 / stride), int(x2 / stride) + 1)
                inside[image, :, rows, cols] = True
        inside &= mask
        projected = torch.einsum('oc,nchw->nohw', weight, student) + bias[None, :, None, None]
        error = (projected - teacher).square().mean(dim=1, keepdim=True)
        expected = error[inside].sum() / inside.sum().clamp(min=1)
        torch.testing.assert_close(out.detach(), expected, rtol=1e-5, atol=1e-6)

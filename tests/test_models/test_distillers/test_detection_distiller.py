"""DetectionDistiller: frozen unsaved teacher, single student pass, parity, wiring and errors."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.models.utils import capture_inputs, capture_outputs
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')


def _batch(seed=0):
    torch.manual_seed(seed)
    return demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2], num_classes=3)


def _distiller_cfg(tmp_path, student=FASTER_RCNN, teacher=FASTER_RCNN, student_width=32,
                   teacher_width=32, **losses):
    student_cfg = tiny_detector_cfg(student, neck_channels=student_width)
    teacher_cfg = tiny_detector_cfg(teacher, base_channels=24, neck_channels=teacher_width)
    ckpt = save_random_checkpoint(teacher_cfg, str(tmp_path / 'teacher.pth'), seed=1)
    distill_losses = losses or dict(
        vkd=dict(type='VkDLoss', in_channels=student_width, out_channels=teacher_width))
    return dict(type='DetectionDistiller', student=student_cfg, teacher=teacher_cfg,
                teacher_ckpt=ckpt, distill_losses=distill_losses)


def _build(cfg):
    return MODELS.build(copy.deepcopy(cfg)).train()


def _sgd(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))


def test_deep_copy_shares_the_frozen_teacher_and_copies_the_rest(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    copied = copy.deepcopy(model)
    assert copied.teacher is model.teacher  # one teacher on the device, also under EMAHook
    student = dict(model.student.named_parameters())
    for name, param in copied.student.named_parameters():
        assert torch.equal(param, student[name]) and param.data_ptr() != \
            student[name].data_ptr(), name
    projector = model.distill_losses['vkd'][0].projector
    assert copied.distill_losses['vkd'][0].projector is not projector
    # Training the copy leaves the original alone; both still run.
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copied.train_step(_batch(), _sgd(copied))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert copied.state_dict().keys() == before.keys()
    model.train_step(_batch(), _sgd(model))


def test_teacher_is_frozen_unsaved_and_student_learns(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    optim_wrapper = _sgd(model)
    for step in range(3):
        losses = model.train_step(_batch(step), optim_wrapper)
        assert all(torch.isfinite(value).all() for value in losses.values())
    assert not model.teacher.training
    assert all(not m.training for m in model.teacher.modules())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key  # incl. BN running statistics
    changed = [k for k, v in model.student.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert any(key.startswith('backbone.') for key in changed)
    state_dict_keys = list(model.state_dict())
    assert not any(key.startswith('teacher') for key in state_dict_keys)
    assert any(key.startswith('student.') for key in state_dict_keys)
    teacher_params = {id(p) for p in model.teacher.parameters()}
    assert not teacher_params & {id(p) for p in model.parameters()}


def test_losses_logged_per_level_beside_the_student_losses(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    losses = model.loss(**_batch())
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(losses)
    assert {f'loss_vkd_p{k}' for k in range(2, 7)} <= set(losses)


def test_distillation_loss_alone_reaches_the_student_backbone(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    losses = model.loss(**_batch())
    distill = sum(v for k, v in losses.items() if k.startswith('loss_vkd'))
    distill.backward()
    grad = model.student.backbone.layer2[0].conv1.weight.grad  # conv1 + layer1: frozen stages
    assert grad is not None and grad.abs().sum().item() > 0
    # ... and never reaches the teacher.
    assert all(p.grad is None for p in model.teacher.parameters())


def test_student_backbone_and_neck_run_once_per_step_teacher_heads_never(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    with capture_outputs(model.student.backbone) as student_calls, \
            capture_outputs(model.teacher.backbone) as teacher_calls, \
            capture_outputs(model.teacher.rpn_head) as teacher_head_calls:
        model.train_step(_batch(), _sgd(model))
    assert len(student_calls) == 1
    assert len(teacher_calls) == 1
    assert not teacher_head_calls


def test_each_model_sees_the_batch_normalised_its_own_way(tmp_path):
    cfg = _distiller_cfg(tmp_path)
    # A caffe-style teacher (BGR, mean only) under a pytorch-style student (RGB, mean/std).
    cfg['teacher']['data_preprocessor'].update(
        mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
    model = _build(cfg)
    data = _batch()
    expected_teacher = model.teacher.data_preprocessor(copy.deepcopy(data), False)['inputs']
    expected_student = model.student.data_preprocessor(copy.deepcopy(data), True)['inputs']
    with capture_inputs(model.teacher.backbone) as teacher_in, \
            capture_inputs(model.student.backbone) as student_in:
        model.loss(**data)
    torch.testing.assert_close(teacher_in[0], expected_teacher)
    torch.testing.assert_close(student_in[0], expected_student)
    assert not torch.allclose(teacher_in[0], student_in[0])


def test_predict_and_tensor_modes_equal_the_bare_student(tmp_path):
    cfg = _distiller_cfg(tmp_path)
    model = _build(cfg)
    model.train_step(_batch(), _sgd(model))  # move the student away from its init
    model.eval()
    student = MODELS.build(copy.deepcopy(cfg['student']))
    student.load_state_dict(model.student.state_dict())
    student.eval()
    data = _batch(seed=5)
    ours = model.test_step(copy.deepcopy(data))
    theirs = student.test_step(copy.deepcopy(data))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
        assert torch.equal(a.pred_instances.labels, b.pred_instances.labels)
    with torch.no_grad():
        ours_tensor = model(**copy.deepcopy(data), mode='tensor')
        batch = student.data_preprocessor(copy.deepcopy(data), False)
        theirs_tensor = student(batch['inputs'], batch['data_samples'], mode='tensor')
    torch.testing.assert_close(ours_tensor, theirs_tensor)


def test_heterogeneous_pair_two_stage_teacher_one_stage_student(tmp_path):
    """Faster R-CNN teacher (64-wide FPN, P2-P6) -> RetinaNet student (32-wide FPN, P3-P7)."""
    cfg = _distiller_cfg(tmp_path, student=RETINANET, teacher=FASTER_RCNN, teacher_width=64)
    # RetinaNet's FPN starts at C3 with extra levels; Faster R-CNN's at C2. Match P3-P6 by
    # building a teacher FPN with RetinaNet's layout.
    cfg['teacher']['neck'].update(start_level=1, add_extra_convs='on_input')
    cfg['teacher']['rpn_head']['anchor_generator']['strides'] = [8, 16, 32, 64, 128]
    cfg['teacher']['roi_head']['bbox_roi_extractor']['featmap_strides'] = [8, 16, 32, 64]
    cfg['teacher_ckpt'] = save_random_checkpoint(cfg['teacher'], str(tmp_path / 't2.pth'))
    model = _build(cfg)
    losses = model.train_step(_batch(), _sgd(model))
    assert {f'loss_vkd_p{k}' for k in range(3, 8)} <= set(losses)
    projector = model.distill_losses['vkd'][0].projector
    assert (projector.in_channels, projector.out_channels) == (32, 64)


def test_necks_of_different_level_counts_pair_on_their_common_strides(tmp_path):
    """A teacher FPN of 4 outputs (strides 4-32) under a student of 5 (4-64): four pairs, widths
    filled in from the necks."""
    cfg = _distiller_cfg(tmp_path, teacher_width=64, vkd=dict(type='VkDLoss'))
    cfg['teacher']['neck']['num_outs'] = 4
    cfg['teacher_ckpt'] = save_random_checkpoint(cfg['teacher'], str(tmp_path / 't4.pth'))
    model = _build(cfg)
    assert [(p.student, p.teacher, p.stride) for p in model.distill_levels['vkd']] == \
        [(0, 0, 4), (1, 1, 8), (2, 2, 16), (3, 3, 32)]
    losses = model.loss(**_batch())
    assert sorted(k for k in losses if k.startswith('loss_vkd')) == \
        [f'loss_vkd_p{k}' for k in range(2, 6)]
    assert [(m.projector.in_channels, m.projector.out_channels)
            for m in model.distill_losses['vkd']] == [(32, 64)] * 4


def test_one_stage_student_under_two_stage_teacher_pairs_by_stride_unchanged(tmp_path):
    """RetinaNet (P3-P7 from C3) under Faster R-CNN (P2-P6 from C2), both as mmdet ships them:
    level 0 of the student pairs with level 1 of the teacher, and so on up to stride 64."""
    cfg = _distiller_cfg(tmp_path, student=RETINANET, teacher=FASTER_RCNN, teacher_width=64,
                         vkd=dict(type='VkDLoss'))
    model = _build(cfg)
    assert [(p.student, p.teacher, p.stride) for p in model.distill_levels['vkd']] == \
        [(0, 1, 8), (1, 2, 16), (2, 3, 32), (3, 4, 64)]
    teacher_batch = model.teacher.data_preprocessor(_batch(), False)
    with torch.no_grad():
        teacher_feats = model.teacher.extract_feat(teacher_batch['inputs'])
    with capture_outputs(model.student.neck) as student_feats:
        losses = model.train_step(_batch(), _sgd(model))
    assert sorted(k for k in losses if k.startswith('loss_vkd')) == \
        [f'loss_vkd_p{k}' for k in range(3, 7)]
    # Each pair has the same spatial size: the strides really match.
    for pair in model.distill_levels['vkd']:
        assert student_feats[0][pair.student].shape[2:] == teacher_feats[pair.teacher].shape[2:]


def test_strides_name_the_levels_to_distil(tmp_path):
    cfg = _distiller_cfg(tmp_path, vkd=dict(type='VkDLoss', strides=[8, 64]))
    losses = _build(cfg).loss(**_batch())
    assert sorted(k for k in losses if k.startswith('loss_vkd')) == ['loss_vkd_p3', 'loss_vkd_p6']


def test_levels_subset_and_stacked_losses_have_distinct_names(tmp_path):
    cfg = _distiller_cfg(
        tmp_path,
        vkd=dict(type='VkDLoss', in_channels=32, out_channels=32, levels=[0, 1]),
        vkd_coarse=dict(type='VkDLoss', in_channels=32, out_channels=32, levels=[4],
                        projector=dict(type='OrthogonalProjector', orthogonal_map='cayley')))
    model = _build(cfg)
    losses = model.loss(**_batch())
    distill_keys = sorted(k for k in losses if k.startswith('loss_vkd'))
    assert distill_keys == ['loss_vkd_coarse_p6', 'loss_vkd_p2', 'loss_vkd_p3']


def test_spatial_mismatch_is_a_clear_error_on_the_first_step(tmp_path):
    cfg = _distiller_cfg(tmp_path)
    cfg['teacher']['data_preprocessor']['pad_size_divisor'] = 64  # different padded size
    model = _build(cfg)
    data = demo_mm_inputs(2, [(3, 96, 96), (3, 64, 64)], num_items=[3, 2], num_classes=3)
    with pytest.raises(ValueError, match='differ in batch or spatial size'):
        model.loss(**data)


def test_padding_masks_follow_each_level_stride_up_to_p7(tmp_path):
    """RetinaNet P3-P7 on a 50 x 80 px image padded into a 96 x 96 batch: at every level the
    real cells are those starting inside the image (P6, 2 x 2 from a stride-2 conv of the 3 x 3
    P5, has 1 real row; its second row starts at pixel 64)."""
    cfg = _distiller_cfg(tmp_path, RETINANET, RETINANET,
                         fitnet=dict(type='FitNetLoss', in_channels=32, out_channels=32))
    model = _build(cfg)
    masks = []
    for module in model.distill_losses['fitnet']:
        module.register_forward_pre_hook(
            lambda _module, args, kwargs: masks.append(kwargs['valid_mask']), with_kwargs=True)
    data = demo_mm_inputs(2, [(3, 50, 80), (3, 96, 96)], num_items=[2, 1], num_classes=3)
    model.loss(**data)
    assert [tuple(mask.shape[2:]) for mask in masks] == [(12, 12), (6, 6), (3, 3), (2, 2), (1, 1)]
    for level, mask in enumerate(masks):
        stride = 2**(level + 3)
        rows = sum(1 for i in range(mask.shape[2]) if i * stride < 50)
        cols = sum(1 for i in range(mask.shape[3]) if i * stride < 80)
        assert mask[0, 0].sum(dim=1).tolist() == [cols] * rows + [0] * (mask.shape[2] - rows)
        assert mask[1].all()
    assert masks[3][0, 0].any(dim=1).tolist() == [True, False]


def test_projector_weight_decay_is_refused_and_config_rule_excludes_it(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    decayed = build_optim_wrapper(
        model, dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)))
    with pytest.raises(ValueError, match='DistillOptimWrapperConstructor'):
        model.train_step(_batch(), decayed)

    model = _build(_distiller_cfg(tmp_path))
    wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                    constructor='DistillOptimWrapperConstructor'))
    projector_ids = {id(p) for m in model.modules() if isinstance(m, OrthogonalProjector)
                     for p in m.parameters()}
    for group in wrapper.optimizer.param_groups:
        if any(id(p) in projector_ids for p in group['params']):
            assert group['weight_decay'] == 0
        else:
            assert group['weight_decay'] == 0.05
    model.train_step(_batch(), wrapper)


def test_device_and_dtype_moves_reach_the_teacher(tmp_path):
    model = _build(_distiller_cfg(tmp_path))
    model.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in model.teacher.parameters())
    model.float()
    assert all(p.dtype == torch.float32 for p in model.teacher.parameters())


def test_bf16_autocast_keeps_distillation_losses_in_float32(tmp_path):
    # RetinaNet: mmcv's CPU nms (used by Faster R-CNN's RPN in training) has no bf16 kernel.
    model = _build(_distiller_cfg(tmp_path, student=RETINANET, teacher=RETINANET))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(**_batch())
    for key, value in losses.items():
        if key.startswith('loss_vkd'):
            assert value.dtype == torch.float32, key
            assert torch.isfinite(value)


@pytest.mark.parametrize('mutate, error, message', [
    (lambda c: c.update(teacher_ckpt=None), ValueError, '`teacher_ckpt` is required'),
    (lambda c: c.update(teacher_ckpt='/nonexistent/teacher.pth'), FileNotFoundError,
     'teacher_ckpt: no checkpoint at'),
    (lambda c: c['distill_losses']['vkd'].update(out_channels=64), ValueError,
     r'distill_losses.vkd.out_channels=64 but teacher.neck.out_channels=32 \(stride 4\)'),
    (lambda c: (c['teacher']['neck'].update(num_outs=4),
                c['distill_losses']['vkd'].update(levels=[4])), ValueError,
     r'levels: level 4 \(stride 64\) is missing from the teacher neck \(student strides '
     r'\[4, 8, 16, 32, 64\], teacher strides \[4, 8, 16, 32\]\)'),
    (lambda c: c['distill_losses']['vkd'].update(in_channels=64, out_channels=32), ValueError,
     r'distill_losses.vkd.in_channels=64 but student.neck.out_channels=32'),
    (lambda c: c['distill_losses']['vkd'].update(
        projector=dict(type='OrthogonalProjector', orthogonal_map='qr')), ValueError,
     'orthogonal_map must be one of'),
    (lambda c: c['distill_losses']['vkd'].update(levels=[0, 7]), ValueError,
     r'distill_losses.vkd.levels=\[0, 7\]'),
    (lambda c: c['student'].pop('neck'), ValueError, 'the `student` detector has no neck'),
    (lambda c: c.update(distill_losses={}), ValueError, '`distill_losses` is empty'),
])
def test_bad_configs_raise_messages_naming_the_key(tmp_path, mutate, error, message):
    cfg = _distiller_cfg(tmp_path)
    mutate(cfg)
    with pytest.raises(error, match=message):
        MODELS.build(cfg)


def test_wider_student_than_teacher_is_refused(tmp_path):
    cfg = _distiller_cfg(tmp_path, student_width=64, teacher_width=32)
    with pytest.raises(ValueError, match='in_channels <= out_channels'):
        MODELS.build(cfg)


def test_teacher_checkpoint_mismatch_names_the_keys(tmp_path):
    cfg = _distiller_cfg(tmp_path)
    state = torch.load(cfg['teacher_ckpt'], weights_only=True)
    state['state_dict'].pop('backbone.conv1.weight')
    state['state_dict']['extra.weight'] = torch.zeros(1)
    torch.save(state, tmp_path / 'broken.pth')
    cfg['teacher_ckpt'] = str(tmp_path / 'broken.pth')
    with pytest.raises(RuntimeError, match='backbone.conv1.weight') as info:
        MODELS.build(copy.deepcopy(cfg))
    assert 'extra.weight' in str(info.value)
    cfg['teacher_ckpt_strict'] = False
    MODELS.build(cfg)


@pytest.mark.parametrize('wrap', [
    lambda sd: sd,                                       # bare state dict
    lambda sd: {'state_dict': sd, 'meta': {'epoch': 24}},  # mmengine / mmdet zoo
    lambda sd: {'model': sd, 'epoch': 300},              # DeiT's releases
    lambda sd: {'state_dict': {f'module.{k}': v for k, v in sd.items()}},  # saved from DDP
])
def test_teacher_checkpoint_layouts_load_to_the_same_weights(tmp_path, wrap):
    cfg = _distiller_cfg(tmp_path)
    state_dict = torch.load(cfg['teacher_ckpt'], weights_only=True)['state_dict']
    torch.save(wrap(state_dict), tmp_path / 'layout.pth')
    cfg['teacher_ckpt'] = str(tmp_path / 'layout.pth')
    model = MODELS.build(cfg)
    # The distiller's teacher has its BatchNorms folded: compare what it computes with the
    # teacher loaded by plain torch (a wrong or missing weight changes the features).
    reference = MODELS.build(copy.deepcopy(cfg['teacher'])).eval()
    reference.load_state_dict(state_dict)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(model.teacher.extract_feat(x), reference.extract_feat(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_level_names_follow_the_fpn_strides_even_for_tiny_top_levels(tmp_path):
    """64-px images: RetinaNet's P6 and P7 are both 1x1, yet keep distinct names."""
    model = _build(_distiller_cfg(tmp_path, student=RETINANET, teacher=RETINANET))
    data = demo_mm_inputs(2, [(3, 64, 64), (3, 64, 48)], num_items=[2, 1], num_classes=3)
    losses = model.loss(**data)
    assert sorted(k for k in losses if k.startswith('loss_vkd')) == \
        [f'loss_vkd_p{k}' for k in range(3, 8)]


def test_same_seed_student_starts_as_when_trained_alone(tmp_path):
    """Building the teacher and the losses must not shift the student's random init, so that a
    distilled run and a student-alone run of one seed are paired."""
    cfg = _distiller_cfg(tmp_path)
    torch.manual_seed(123)
    distiller = MODELS.build(copy.deepcopy(cfg))
    distiller.init_weights()
    torch.manual_seed(123)
    alone = MODELS.build(copy.deepcopy(cfg['student']))
    alone.init_weights()
    for key, value in alone.state_dict().items():
        assert torch.equal(distiller.student.state_dict()[key], value), key

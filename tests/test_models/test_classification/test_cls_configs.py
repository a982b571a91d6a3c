"""Every shipped configs/vkd_cls config, shrunk for the CPU (pretrained off, tiny images)."""
import copy
import glob
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import vkd_mmdet.classification  # noqa: F401 (registers the mmpretrain modules)
from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.testing.tiny_classifiers import (
    IMG,
    NUM_CLASSES,
    TINY_VIT,
    batch,
    save_random_checkpoint,
)
from vkd_mmdet.utils import resolve_model_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'vkd_cls', '*.py')))


def tiny_config(path: str, tmp_path) -> Config:
    """The config with tiny student / teacher / classes and a random local teacher checkpoint."""
    cfg = Config.fromfile(path)
    model = cfg.model
    cfg.data_preprocessor.num_classes = NUM_CLASSES
    head = dict(num_classes=NUM_CLASSES)
    if model.student.get('backbone', {}).get('type') == 'ConvStemDeiT':
        model.student.backbone.update(arch=TINY_VIT, img_size=IMG, stem_channels=8)
        model.student.head = dict(head, in_channels=32)
        student_channels = 32
    else:
        model.student.backbone = dict(base_channels=8, stem_channels=8)
        model.student.head = dict(head, in_channels=64)
        student_channels = 64
    if model.teacher.get('type') == 'TimmClassifier':
        model.teacher.update(model_name='regnetx_002', num_classes=NUM_CLASSES)
        teacher_channels, timm_keys = 368, True
    else:
        model.teacher.backbone = dict(base_channels=8, stem_channels=8)
        model.teacher.head = dict(head, in_channels=64)
        teacher_channels, timm_keys = 64, False
    for loss in model.get('feature_losses', {}).values():
        loss.update(in_channels=student_channels, out_channels=teacher_channels)
        if loss.type.endswith('NDLoss'):  # random centres stand in for the tool's file
            torch.save(dict(centers=torch.randn(NUM_CLASSES, teacher_channels)),
                       tmp_path / 'centers.pth')
            loss.update(num_classes=NUM_CLASSES, class_centers=str(tmp_path / 'centers.pth'))
    # A fresh current MessageHub: no epoch of an earlier Runner leaks into KD warm-ups.
    MessageHub.get_instance(f'tiny_config_{tmp_path}')
    init_default_scope('mmpretrain')
    teacher = resolve_model_cfg(copy.deepcopy(model.teacher), 'teacher')
    teacher.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model.teacher_ckpt = save_random_checkpoint(teacher, tmp_path / 'teacher.pth', timm_keys)
    return cfg


def build(cfg: Config):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))  # as Runner
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def test_configs_are_shipped():
    names = {osp.basename(path) for path in CONFIGS}
    assert {'deit-tiny_regnety160_in1k.py', 'deit-small_regnety160_in1k.py',
            'resnet18_resnet34_in1k.py', 'srd_resnet18_resnet34_in1k.py',
            'kdpp_resnet18_resnet34_in1k.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_one_train_step(path, tmp_path):
    cfg = tiny_config(path, tmp_path)
    model = build(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)  # the config's paramwise rules
    losses = model.train_step(batch(), optim_wrapper)
    expected = {'loss', 'loss_cls'} | {f'loss_{name}' for name in
                                       {**cfg.model.get('feature_losses', {}),
                                        **cfg.model.get('logit_losses', {})}}
    assert expected <= set(losses)
    assert all(torch.isfinite(value) for value in losses.values())


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_weight_decay_spares_orthogonal_projectors_and_the_recipes_own_exclusions(path,
                                                                                  tmp_path):
    """The config's own paramwise rules: weight decay 0 for exactly the orthogonal projectors'
    parameters, plus, in the DeiT recipe, norms, biases, cls token and position embedding;
    everything else (SRD's free linear adapter included) gets the optimizer's decay."""
    cfg = tiny_config(path, tmp_path)
    # the rule is the optimizer constructor's
    assert cfg.optim_wrapper.constructor == 'DistillOptimWrapperConstructor'
    model = build(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_wd = cfg.optim_wrapper.optimizer.weight_decay
    names = {id(p): name for name, p in model.named_parameters()}
    decay = {names[id(p)]: group['weight_decay']
             for group in wrapper.optimizer.param_groups for p in group['params']}
    assert set(decay) == set(names.values())

    expected = {f'{module_name}.{name}' for module_name, module in model.named_modules()
                if isinstance(module, OrthogonalProjector)
                for name, _ in module.named_parameters()}
    if cfg.model.student.backbone.get('type') == 'ConvStemDeiT':  # DeiT's no-decay set
        norms = (_BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
        expected |= {f'{module_name}.{name}' for module_name, module in model.named_modules()
                     if isinstance(module, norms) for name, _ in module.named_parameters()}
        expected |= {name for name in decay
                     if name.rsplit('.', 1)[-1] in ('bias', 'cls_token', 'pos_embed')}
    assert {name for name, wd in decay.items() if wd == 0} == expected
    assert all(wd == base_wd for name, wd in decay.items() if name not in expected)
    has_vkd = any(loss.type == 'VkDClsLoss' for loss in cfg.model.feature_losses.values())
    assert has_vkd == any('projector.raw_weight' in name for name in expected)


@pytest.mark.parametrize('path', [p for p in CONFIGS if osp.basename(p).startswith('deit')],
                         ids=osp.basename)
def test_deit_configs_follow_the_authors_recipe(path, tmp_path):
    """The VkD ImageNet recipe of METHODS.md: AdamW 5e-4 (batch 512), wd 0.05, per-iteration
    cosine to 5e-6 with no warm-up, 300 epochs, drop path 0, 3-Augment without RandAugment or
    random erasing, Mixup 0.8, CutMix 1.0, label smoothing 0.1."""
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 5e-4, 0.05)
    assert cfg.train_dataloader.batch_size * 8 == 512
    assert cfg.train_cfg.max_epochs == 300
    (schedule,) = cfg.param_scheduler
    assert schedule.type == 'CosineAnnealingLR' and schedule.eta_min == 5e-6
    assert (schedule.begin, schedule.end, schedule.convert_to_iter_based) == (0, 300, True)
    student = resolve_model_cfg(cfg.model.student, 'student')
    assert student.backbone.drop_path_rate == 0
    assert [(a.type, a.alpha) for a in student.train_cfg.augments] == [('Mixup', 0.8),
                                                                        ('CutMix', 1.0)]
    assert student.head.loss.label_smooth_val == 0.1

    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in pipeline] == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
                                          'RandomChoice', 'ColorJitter', 'PackInputs']
    transforms = Compose(pipeline).transforms
    crop, flip, choice, jitter = transforms[1:5]
    assert (crop.crop_ratio_range, crop.interpolation) == ((0.08, 1.0), 'bicubic')
    assert flip.prob == 0.5
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == \
        ((0.7, 1.3), (0.7, 1.3), (0.7, 1.3), None)
    gray, solarize, blur = (branch.transforms[0] for branch in choice.transforms)
    radii = [blur.random_magnitude() for _ in range(2000)]
    assert 0.1 <= min(radii) < 0.15 and 1.95 < max(radii) <= 2.0
    # Grayscale (PIL's luma, on BGR images) and solarize (invert >= 128) against numpy.
    image = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    luma = image.astype(np.float64) @ np.array([0.114, 0.587, 0.299])
    grayed = gray.transform(dict(img=image.copy()))['img']
    assert np.abs(grayed.astype(np.float64) - luma[..., None]).max() <= 1
    solarized = solarize.transform(dict(img=image.copy()))['img']
    assert np.array_equal(solarized, np.where(image >= 128, 255 - image, image))
    # The whole pipeline runs on an image file.
    mmcv.imwrite(image, str(tmp_path / 'image.png'))
    out = Compose(pipeline)(dict(img_path=str(tmp_path / 'image.png'), gt_label=0))
    assert out['inputs'].shape == (3, 224, 224)


def test_export_loads_in_plain_mmpretrain(tmp_path):
    """The ResNet-18 student, exported by tools' export_student, loads with
    mmpretrain.apis.get_model / ImageClassificationInferencer in a process without vkd_mmdet and
    predicts what the distiller predicts."""
    from vkd_mmdet.apis.export_student import export_student
    cfg = tiny_config(osp.join(ROOT, 'configs', 'vkd_cls', 'resnet18_resnet34_in1k.py'),
                      tmp_path)
    model = build(cfg).eval()
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), tmp_path / 'run.pth')
    cfg_path, ckpt_path = export_student(cfg, str(tmp_path / 'run.pth'), str(tmp_path / 'out'))
    image = np.random.default_rng(0).integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
    np.save(tmp_path / 'image.npy', image)
    script = f"""
import sys, numpy as np, torch
from mmpretrain.apis import ImageClassificationInferencer, get_model
model = get_model({cfg_path!r}, pretrained={ckpt_path!r}, device='cpu').eval()
image = np.load({str(tmp_path / 'image.npy')!r})
batch = model.data_preprocessor(dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)]))
np.save({str(tmp_path / 'logits.npy')!r}, model(batch['inputs']).detach().numpy())
result = ImageClassificationInferencer(model)(image)[0]
assert 'vkd_mmdet' not in sys.modules, 'vkd_mmdet was imported'
print('pred_label', result['pred_label'])
"""
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = model(torch.from_numpy(image).permute(2, 0, 1)[None], mode='tensor')
    np.testing.assert_allclose(np.load(tmp_path / 'logits.npy'), expected.detach().numpy(),
                               rtol=1e-5, atol=1e-5)

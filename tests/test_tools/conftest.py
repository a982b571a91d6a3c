"""A tiny RetinaNet distillation run on generated COCO data, written once per test session."""
import socket
from pathlib import Path

import pytest
import torch
from mmengine.registry import init_default_scope
from tool_scripts import load_tool, run_python, subprocess_env  # noqa: F401 (re-exported)

from vkd_mmdet.testing import (
    CLASSES,
    make_synthetic_coco,
    save_random_checkpoint,
    tiny_detector_cfg,
)

REPO = Path(__file__).resolve().parents[2]
RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'

# Distiller config over mmdet's packaged RetinaNet-R18 config; the test data, a 4-iteration
# schedule whose LR does not depend on max_iters (a shorter run is a prefix of a longer one), and
# score_thr=0 so that even random detectors predict boxes to compare.
CONFIG = """
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)

data_root = '{data_root}/'
metainfo = dict(classes={classes!r})
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={student!r},
    teacher={teacher!r},
    teacher_ckpt='{teacher_ckpt}',
    distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16, out_channels=32)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3)]
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor', optimizer=dict(lr=0.01))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='ExportStudentHook')]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
"""


def tiny_pair(root: Path, detector: str, num_val: int) -> tuple:
    """Synthetic data in ``root/data`` (4 train, ``num_val`` val images) and two tiny versions of
    mmdet's ``detector`` config: ``(teacher, student, teacher_ckpt)``, the teacher 16/32 wide with
    a random checkpoint in ``root``, the student 8/16 wide."""
    make_synthetic_coco(str(root / 'data'), num_train=4, num_val=num_val, image_size=(64, 96),
                        max_objects=3)
    init_default_scope('mmdet')
    teacher, student = (tiny_detector_cfg(detector, num_classes=len(CLASSES),
                                          base_channels=base, neck_channels=neck)
                        for base, neck in ((16, 32), (8, 16)))
    return teacher, student, save_random_checkpoint(teacher, str(root / 'teacher.pth'), seed=1)


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory) -> dict:
    """Paths of the generated data, the teacher checkpoint and the distiller config."""
    root = tmp_path_factory.mktemp('tiny_run')
    teacher, student, teacher_ckpt = tiny_pair(root, RETINANET, num_val=2)
    for model in (teacher, student):
        model.test_cfg.score_thr = 0.0
    teacher, student = teacher.to_dict(), student.to_dict()
    config = root / 'tiny_vkd_retinanet.py'
    config.write_text(CONFIG.format(data_root=root / 'data', classes=CLASSES,
                                    student=student, teacher=teacher,
                                    teacher_ckpt=teacher_ckpt))
    return dict(root=root, config=str(config), student=student, teacher=teacher,
                teacher_ckpt=teacher_ckpt,
                val_images=sorted(str(p) for p in (root / 'data' / 'val').glob('*.png')))


@pytest.fixture
def one_thread():
    """In-process runs with the one thread of the killed subprocess (``subprocess_env``): two
    threads round differently (~1e-6 after 4 iterations), one makes the comparison bit-exact."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: ``--cfg-options`` that skip the validation which ends every run (for tests that do not read it).
NO_VAL = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
NO_EXPORT = 'custom_hooks=[]'


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a torchrun rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def probe_config(tiny_run: dict, name: str, custom_hooks: str) -> str:
    """A config over the tiny run's, with the test probe hooks importable and ``custom_hooks``."""
    path = tiny_run['root'] / f'{name}.py'
    path.write_text(f"_base_ = ['{tiny_run['config']}']\n"
                    "custom_imports = dict(imports=['vkd_mmdet', 'test_tools.probe_hooks'], "
                    "allow_failed_imports=False)\n"
                    f"custom_hooks = {custom_hooks}\n")
    return str(path)


def tool_main(name: str):
    """``tools/<name>.py``'s ``main``."""
    return load_tool(f'{name}.py').main


def student_state(checkpoint: str) -> dict:
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    return {k[len('student.'):]: v for k, v in state.items() if k.startswith('student.')}


def assert_resumed_like_uninterrupted(resumed: dict, uninterrupted: dict, at_resume: dict) -> None:
    """The resumed run's student equals the uninterrupted run's (to 1e-6: the same arithmetic in
    the same order), and the iterations after the resume point did change it (``at_resume``:
    the student the resumed run started from), so that the comparison is not vacuous."""
    assert resumed.keys() == uninterrupted.keys()
    assert any(not torch.equal(at_resume[k], uninterrupted[k]) for k in uninterrupted)
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)


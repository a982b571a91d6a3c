"""Safe checkpoint loading (vkd_mmdet.utils.checkpoint, installed by .safe_loading): every
mmengine scheme, teachers, ``init_cfg`` and ``load_from`` read through the safe loader; the
Runner's own local checkpoints stay loadable for ``resume``. URLs are served from a local
``http.server`` on 127.0.0.1.
"""
import copy
import functools
import http.server
import os
import pickle
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from torch.utils.data import Dataset

from vkd_mmdet import install_safe_loading
from vkd_mmdet.testing import tiny_detector_cfg
from vkd_mmdet.utils import UnsafeCheckpointError, checkpoint, trusted_checkpoints

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


@pytest.fixture(autouse=True, scope='module')
def _safe_loading():
    """The documented point, explicitly: the tests below also call mmengine's loaders and the
    Runner without building a distiller first (test_safe_loading.py tests the point itself)."""
    assert install_safe_loading()


class _Points(Dataset):

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(32, 4, generator=generator)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return dict(x=self.x[index], y=self.y[index])


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x, y, mode='loss'):
        return dict(loss=((self.linear(x) - y)**2).mean())


def _runner(work_dir, max_iters, resume=False, seed=0):
    torch.manual_seed(0)  # same initial weights for every runner
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            batch_size=4,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        # A fixed schedule end: the shorter first run is the longer one stopped early.
        param_scheduler=dict(type='MultiStepLR', milestones=[5], by_epoch=False, end=8),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
        randomness=dict(seed=seed),
        resume=resume)


def test_runner_checkpoint_needs_more_than_the_safe_loader(tmp_path):
    """The premise: the runner's checkpoint holds objects torch's safe loader refuses."""
    _runner(tmp_path, 4).train()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'iter_4.pth', weights_only=True)


def test_runner_resumes_from_its_own_checkpoint_and_continues(tmp_path):
    _runner(tmp_path / 'full', 8).train()
    full = torch.load(tmp_path / 'full' / 'iter_8.pth', weights_only=False)

    _runner(tmp_path / 'split', 4).train()
    resumed = _runner(tmp_path / 'split', 8, resume=True)
    resumed.train()
    assert resumed.iter == 8
    split = torch.load(tmp_path / 'split' / 'iter_8.pth', weights_only=False)
    for key, value in full['state_dict'].items():
        torch.testing.assert_close(split['state_dict'][key], value)



class Payload:
    """Pickles as a call of ``os.mkdir(marker)``: if the marker exists, the payload ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """A folder served on 127.0.0.1; torch hub's download cache in the test's tmp dir."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    server.server_close()


@pytest.fixture(params=['local', 'url'])
def place(request, http_root, tmp_path):
    """``place(name, obj)``: save ``obj`` and return the path or URL a config would name."""
    root, base = http_root

    def _place(name, obj):
        if request.param == 'local':
            path = tmp_path / name
            torch.save(obj, path)
            return str(path)
        torch.save(obj, root / name)
        return f'{base}/{name}'

    return _place


# Both unpicklers on torch >= 2.6 (the restricted one is what torch < 2.6 gets); the
# restricted one alone on older torch, which has no ``safe_globals``.
@pytest.fixture(params=['safe_globals', 'restricted_unpickler'][
    0 if checkpoint._HAS_SAFE_GLOBALS else 1:])
def unpickler(request, monkeypatch):
    monkeypatch.setattr(checkpoint, '_HAS_SAFE_GLOBALS', request.param == 'safe_globals')
    return request.param


@pytest.fixture
def teacher_cfg():
    init_default_scope('mmdet')
    return tiny_detector_cfg(RETINANET, neck_channels=16)


def _teacher_state(cfg, seed=1):
    torch.manual_seed(seed)
    return MODELS.build(copy.deepcopy(cfg)).state_dict()


def _distiller(cfg, teacher_ckpt, **kwargs):
    init_default_scope('mmdet')  # a Runner built before switches it to mmengine's
    return MODELS.build(dict(
        type='DetectionDistiller', student=copy.deepcopy(cfg), teacher=copy.deepcopy(cfg),
        teacher_ckpt=teacher_ckpt, **kwargs,
        distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16, out_channels=16))))


def _assert_teacher_has(model, cfg, state):
    """The distiller's teacher computes what ``state`` loaded by plain torch computes (its
    BatchNorms are folded, so its own state dict differs: compare the neck outputs)."""
    reference = MODELS.build(copy.deepcopy(cfg)).eval()
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(model.teacher.extract_feat(x), reference.extract_feat(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope='module')
def runner_meta(tmp_path_factory):
    """``meta`` as mmengine's Runner writes it (config text, seed, versions, time)."""
    work_dir = tmp_path_factory.mktemp('runner')
    _runner(work_dir, 2, seed=None).train()
    meta = torch.load(work_dir / 'iter_2.pth', weights_only=False)['meta']
    assert {'cfg', 'seed', 'mmengine_version'} <= meta.keys()
    return meta


def _zoo_checkpoint(state_dict, runner_meta):
    """What mmdet's publish_model keeps (meta + state_dict), plus numpy values in meta."""
    meta = dict(runner_meta, loss=np.float32(0.25), counts=np.arange(3, dtype=np.int64),
                dtype=np.dtype('float32'), flag=np.bool_(True),
                dataset_meta=dict(classes=('a', 'b'), palette=[(220, 20, 60), (0, 0, 142)]))
    return dict(meta=meta, state_dict=state_dict)


def test_payload_teacher_is_refused_and_never_runs(place, unpickler, teacher_cfg, tmp_path):
    marker = tmp_path / 'payload_ran'
    src = place('evil.pth', dict(state_dict=_teacher_state(teacher_cfg),
                                 meta=dict(x=Payload(marker))))
    with pytest.raises(UnsafeCheckpointError) as info:
        _distiller(teacher_cfg, src)
    message = str(info.value)
    assert 'teacher_ckpt' in message and src in message
    assert 'teacher_ckpt_trusted=True' in message
    assert not marker.exists()


def test_zoo_teacher_with_numpy_meta_loads_safely(place, unpickler, teacher_cfg, runner_meta):
    state = _teacher_state(teacher_cfg)
    src = place('zoo.pth', _zoo_checkpoint(state, runner_meta))
    model = _distiller(teacher_cfg, src)
    _assert_teacher_has(model, teacher_cfg, state)


def test_trusted_teacher_loads_pickled_objects(place, teacher_cfg, tmp_path):
    marker = tmp_path / 'payload_ran'
    state = _teacher_state(teacher_cfg)
    src = place('own.pth', dict(state_dict=state, meta=dict(x=Payload(marker))))
    model = _distiller(teacher_cfg, src, teacher_ckpt_trusted=True)
    assert marker.exists()  # the opt-in does unpickle fully
    _assert_teacher_has(model, teacher_cfg, state)


def test_payload_init_cfg_is_refused_with_its_config_path(place, unpickler, teacher_cfg, tmp_path,
                                                          runner_meta):
    marker = tmp_path / 'payload_ran'
    evil = place('evil_backbone.pth', dict(state_dict={}, meta=dict(x=Payload(marker))))
    teacher_ckpt = place('zoo.pth', _zoo_checkpoint(_teacher_state(teacher_cfg), runner_meta))
    student = copy.deepcopy(teacher_cfg)
    student.backbone.init_cfg = dict(type='Pretrained', checkpoint=evil)
    model = MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher_cfg, teacher_ckpt=teacher_ckpt,
        distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16, out_channels=16))))
    with pytest.raises(UnsafeCheckpointError) as info:
        model.init_weights()
    message = str(info.value)
    assert 'student.backbone.init_cfg' in message and evil in message
    assert checkpoint.TRUSTED_ENV in message
    assert not marker.exists()


def test_environment_variable_trusts_a_listed_init_cfg_checkpoint(place, tmp_path, monkeypatch):
    marker = tmp_path / 'payload_ran'
    weights = nn.Linear(2, 2).state_dict()
    src = place('own_backbone.pth', dict(state_dict=weights, meta=dict(x=Payload(marker))))
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(src)
    monkeypatch.setenv(checkpoint.TRUSTED_ENV, f'some/other.pth,{src}')
    loaded = CheckpointLoader.load_checkpoint(src)
    assert marker.exists()
    torch.testing.assert_close(loaded['state_dict']['weight'], weights['weight'])


@pytest.mark.parametrize('scheme,lister', [('torchvision://', 'get_torchvision_models'),
                                           ('modelzoo://', 'get_torchvision_models'),
                                           ('mmcls://', 'get_mmcls_models'),
                                           ('open-mmlab://', 'get_external_models'),
                                           ('openmmlab://', 'get_external_models')])
def test_name_schemes_resolve_to_the_safe_url_loader(scheme, lister, http_root, tmp_path,
                                                     monkeypatch):
    root, base = http_root
    marker = tmp_path / 'payload_ran'
    torch.save(dict(state_dict={}, x=Payload(marker)), root / 'evil.pth')
    monkeypatch.setattr(mmengine_checkpoint, lister, lambda: {'evil': f'{base}/evil.pth'})
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(f'{scheme}evil')
    assert not marker.exists()


def test_every_mmengine_scheme_has_a_safe_loader():
    """Fails when mmengine adds a scheme (or drops one) that this module does not cover."""
    covered = {prefix for prefixes in checkpoint.SAFE_SCHEMES for prefix in prefixes}
    for prefix, loader in CheckpointLoader._schemes.items():
        if prefix in checkpoint.URL_ALIAS_SCHEMES:
            assert loader.__module__ == 'mmengine.runner.checkpoint'
        else:
            assert prefix in covered and loader.__module__ == checkpoint.__name__, prefix
    assert mmengine_checkpoint.load_from_http is checkpoint.load_from_http


def test_downloads_keep_torch_hubs_cache(http_root, tmp_path):
    root, base = http_root
    torch.save(dict(state_dict={'w': torch.ones(1)}), root / 'cached.pth')
    CheckpointLoader.load_checkpoint(f'{base}/cached.pth')
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'cached.pth'
    assert cached.is_file()
    (root / 'cached.pth').unlink()  # a second load must not need the server
    assert CheckpointLoader.load_checkpoint(f'{base}/cached.pth')['state_dict']['w'].item() == 1


def test_runner_load_from_an_url_keeps_the_safe_loader(http_root, tmp_path):
    root, base = http_root
    marker = tmp_path / 'payload_ran'
    torch.save(dict(state_dict={}, meta=dict(x=Payload(marker))), root / 'evil.pth')
    runner = _runner(tmp_path / 'work', 1)
    with pytest.raises(UnsafeCheckpointError):
        runner.load_checkpoint(f'{base}/evil.pth')
    assert not marker.exists()


def test_full_training_checkpoint_as_teacher_names_the_opt_in(tmp_path, teacher_cfg):
    _runner(tmp_path / 'work', 1).train()  # holds the message hub (HistoryBuffer objects)
    with pytest.raises(UnsafeCheckpointError, match='teacher_ckpt_trusted=True'):
        _distiller(teacher_cfg, str(tmp_path / 'work' / 'iter_1.pth'))


def test_truncated_teacher_checkpoint_names_the_key_and_file(tmp_path, teacher_cfg):
    path = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict=_teacher_state(teacher_cfg)), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # a download or a save cut short
    with pytest.raises(RuntimeError, match='teacher_ckpt') as info:
        _distiller(teacher_cfg, str(path))
    assert str(path) in str(info.value) and 'not a readable torch checkpoint' in str(info.value)


def test_trusted_context_unpickles_fully(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'own.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, payload=Payload(marker)), path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()
    with trusted_checkpoints():
        CheckpointLoader.load_checkpoint(str(path))
    assert marker.exists()

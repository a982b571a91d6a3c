"""The one documented point where vkd_mmdet changes mmengine (vkd_mmdet.utils.safe_loading):
``import vkd_mmdet`` (also as a config's ``custom_imports``) changes nothing; building a distiller
installs the safe loading and logs it once; ``VKD_SAFE_LOADING=0`` leaves mmengine alone.

Each case runs in a fresh interpreter: this test process has long installed it.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg
from vkd_mmdet.utils import safe_loading

REPO = Path(__file__).resolve().parents[2]
ACTIVE = 'vkd_mmdet: safe checkpoint loading is active'
OFF = 'vkd_mmdet: safe checkpoint loading is OFF'

# Records mmengine's loader state, loads the config (its custom_imports import vkd_mmdet), checks
# that nothing changed, builds the distiller twice (the documented point) and prints the state.
SCRIPT = textwrap.dedent('''
    import sys
    from mmengine.runner import Runner
    from mmengine.runner import checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader

    schemes = dict(CheckpointLoader._schemes)
    load_from_http, load_checkpoint = mmengine_checkpoint.load_from_http, Runner.load_checkpoint

    def untouched():
        return (CheckpointLoader._schemes.keys() == schemes.keys()
                and all(CheckpointLoader._schemes[k] is v for k, v in schemes.items())
                and mmengine_checkpoint.load_from_http is load_from_http
                and Runner.load_checkpoint is load_checkpoint)

    from mmengine.config import Config
    cfg = Config.fromfile(sys.argv[1])
    import vkd_mmdet.classification  # the classification plugin's import, too
    assert 'vkd_mmdet' in sys.modules
    print('after import: untouched', untouched())

    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    MODELS.build(cfg.model)
    MODELS.build(cfg.model)
    print('after build: untouched', untouched())

    from vkd_mmdet.utils import checkpoint
    ours = {prefix: loader for prefixes, loader in checkpoint.SAFE_SCHEMES.items()
            for prefix in prefixes}
    print('schemes safe', all(CheckpointLoader._schemes[p] is f for p, f in ours.items()))
    print('load_from_http safe', mmengine_checkpoint.load_from_http is checkpoint.load_from_http)
    print('Runner.load_checkpoint wrapped once',
          getattr(Runner.load_checkpoint, '__wrapped__', None) is load_checkpoint)
''')


@pytest.fixture(scope='module')
def distiller_config(tmp_path_factory) -> str:
    """A tiny DetectionDistiller config loading the plugin through ``custom_imports``."""
    root = tmp_path_factory.mktemp('safe_loading')
    init_default_scope('mmdet')
    teacher = tiny_detector_cfg('retinanet/retinanet_r50_fpn_1x_coco.py', neck_channels=16)
    teacher_ckpt = save_random_checkpoint(teacher, str(root / 'teacher.pth'), seed=1)
    path = root / 'tiny_distiller.py'
    Config(dict(
        custom_imports=dict(imports=['vkd_mmdet'], allow_failed_imports=False),
        model=dict(type='DetectionDistiller', student=teacher.to_dict(),
                   teacher=teacher.to_dict(), teacher_ckpt=teacher_ckpt,
                   distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16,
                                                out_channels=16))))).dump(str(path))
    return str(path)


def _run(config: str, **env: str) -> str:
    script = Path(config).with_name('probe.py')
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), config], capture_output=True, text=True, timeout=300,
        env=dict(_clean_env(), PYTHONPATH=str(REPO), OMP_NUM_THREADS='1', **env))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _clean_env() -> dict:
    return {key: value for key, value in os.environ.items()
            if key not in (safe_loading.SWITCH_ENV, 'PYTHONPATH')}


def test_import_changes_nothing_and_building_a_distiller_installs_it_once(distiller_config):
    output = _run(distiller_config)
    assert 'after import: untouched True' in output
    assert 'after build: untouched False' in output
    assert 'schemes safe True' in output
    assert 'load_from_http safe True' in output
    assert 'Runner.load_checkpoint wrapped once True' in output
    assert output.count(ACTIVE) == 1 and OFF not in output


def test_switched_off_it_changes_nothing_and_says_so_once(distiller_config):
    output = _run(distiller_config, **{safe_loading.SWITCH_ENV: '0'})
    assert 'after import: untouched True' in output
    assert 'after build: untouched True' in output
    assert output.count(OFF) == 1 and ACTIVE not in output


@pytest.mark.parametrize('value, requested', [('', True), ('1', True), ('On', True),
                                              ('0', False), ('off', False), ('FALSE', False)])
def test_switch_values(monkeypatch, value, requested):
    monkeypatch.setenv(safe_loading.SWITCH_ENV, value)
    assert safe_loading.safe_loading_requested() is requested


def test_an_unknown_switch_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(safe_loading.SWITCH_ENV, 'maybe')
    with pytest.raises(ValueError, match=r"VKD_SAFE_LOADING='maybe': expected one of 1, on"):
        safe_loading.safe_loading_requested()

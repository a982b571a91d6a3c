"""`pip wheel .` ships configs, tools and the model index under vkd_mmdet/.mim (mmdet's layout), and
a project outside the repo inherits an installed config as the README documents."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What setup.py and MANIFEST.in read (a copy keeps build/ and *.egg-info out of the checkout).
SOURCES = ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE', 'model-index.yml',
           'requirements', 'configs', 'tools', 'vkd_mmdet')
PROJECT_CONFIG = """_base_ = ['{{$VKD_MMDET_CONFIGS:}}/vkd/faster_rcnn_r101_r18.py']
model = dict(distill_losses=dict(vkd=dict(loss_weight=2.0)))
"""


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('wheel')
    (root / 'src').mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / 'src' / name,
                            ignore=shutil.ignore_patterns('__pycache__', '.mim'))
        else:
            shutil.copyfile(REPO / name, root / 'src' / name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(root / 'dist')], cwd=root / 'src', check=True,
                   capture_output=True, timeout=300)
    (built,) = (root / 'dist').glob('vkd_mmdet-*.whl')
    return built


def test_wheel_holds_configs_tools_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mim = 'vkd_mmdet/.mim/'
    assert {mim + 'configs/vkd/faster_rcnn_r101_r18.py', mim + 'tools/train.py',
            mim + 'tools/test.py', mim + 'tools/dist_train.sh', mim + 'model-index.yml',
            mim + 'configs/vkd/metafile.yml', mim + 'configs/vkd/README.md'} <= names
    shipped = {n[len(mim):] for n in names if n.startswith(mim + 'configs/') and n.endswith('.py')}
    assert shipped == {str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py')}
    assert not any('__pycache__' in n or n.startswith('tests/') for n in names)


def test_outside_project_inherits_an_installed_config(wheel, tmp_path):
    site = tmp_path / 'site'
    zipfile.ZipFile(wheel).extractall(site)  # what pip puts in site-packages
    project = tmp_path / 'project'
    project.mkdir()
    (project / 'my_vkd.py').write_text(PROJECT_CONFIG)
    env = dict(os.environ, PYTHONPATH=str(site))  # the installed copy, not this checkout
    where = 'from vkd_mmdet.utils import configs_dir; print(configs_dir())'
    configs = subprocess.run([sys.executable, '-c', where], env=env, cwd=project, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert Path(configs) == site / 'vkd_mmdet' / '.mim' / 'configs'

    probe = ('from mmengine.config import Config; cfg = Config.fromfile("my_vkd.py"); '
             'print(cfg.model.type, cfg.model.distill_losses.vkd.loss_weight, '
             'cfg.model.teacher.cfg_path, cfg.custom_imports.imports)')
    result = subprocess.run([sys.executable, '-c', probe], cwd=project, capture_output=True,
                            text=True, env=dict(env, VKD_MMDET_CONFIGS=configs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == (
        "DetectionDistiller 2.0 mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py ['vkd_mmdet']")

    unset = subprocess.run([sys.executable, '-c', probe], cwd=project, capture_output=True,
                           text=True, env=env)
    assert unset.returncode != 0 and 'VKD_MMDET_CONFIGS' in unset.stderr

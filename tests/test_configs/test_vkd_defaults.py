"""The VkD settings every shipped detection config runs with, pinned.

They are what docs/vkd_diagnosis.md supports: weight 4.0 per level (the authors' detection
weight; 1-2 lost AP on both CPU proxies' tune split), smooth-L1 with beta 1, the matrix-exp
orthogonal projector, both sides standardised with the padding left out, every level both necks
share. Changing one of them is a decision to make with new evidence, not a drift: update this table
and the diagnosis together.
"""
import glob
import inspect
import os.path as osp

import pytest
from mmengine.config import Config

from vkd_mmdet.models.losses import VkDLoss

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
ORTHOGONAL = dict(type='OrthogonalProjector', orthogonal_map='matrix_exp')
LINEAR = dict(type='LinearAdapter', bias=False)
PAPER = dict(loss_weight=4.0, beta=1.0, projector=ORTHOGONAL, normalize=True, eps=1e-5,
             ignore_padding=True, sync_stats=False)
EXPECTED = {
    'vkd/faster_rcnn_r101_r18.py': PAPER,
    'vkd/retinanet_r101_r18.py': PAPER,
    'vkd/gfl_r101_r18.py': PAPER,
    'vkd/rtmdet_l_tiny.py': PAPER,
    'vkd/dino_swin-l_r50.py': PAPER,
    'vkd/mask_rcnn_r101_r50.py': PAPER,
    'stacked/vkd_kdpp_faster_rcnn_r101_r18.py': PAPER,
    'stacked/vkd_crosskd_gfl_r101_r50.py': PAPER,
    'demo/vkd_fcos_r18-w32_r18-w16.py': PAPER,
    'demo/vkd_faster-rcnn_r18-w32_r18-w16.py': PAPER,
    'demo/vkd_gfl_r18-w32_r18-w16.py': PAPER,
    'demo/vkd-crosskd_gfl_r18-w32_r18-w16.py': PAPER,
}
# the leaderboard's ablations, on both one-stage pairs: one component changed each
for pair in ('fcos', 'gfl'):
    EXPECTED.update({
        f'demo/vkd-linear_{pair}_r18-w32_r18-w16.py': dict(PAPER, projector=LINEAR),
        f'demo/vkd-nonorm_{pair}_r18-w32_r18-w16.py': dict(PAPER, normalize=False),
        f'demo/vkd-linear-nonorm_{pair}_r18-w32_r18-w16.py': dict(PAPER, projector=LINEAR,
                                                                  normalize=False),
        f'demo/vkd-cayley_{pair}_r18-w32_r18-w16.py': dict(
            PAPER, projector=dict(ORTHOGONAL, orthogonal_map='cayley')),
        f'demo/vkd-householder_{pair}_r18-w32_r18-w16.py': dict(
            PAPER, projector=dict(ORTHOGONAL, orthogonal_map='householder')),
    })
DEFAULTS = {name: p.default for name, p in inspect.signature(VkDLoss).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _vkd_entries(path: str) -> dict:
    distill = Config.fromfile(path).model.get('distill_losses') or {}
    return {name: entry for name, entry in distill.items() if entry.get('type') == 'VkDLoss'}


def _with_vkd() -> list:
    """Every shipped detection config whose distiller has a VkDLoss entry (inherited too)."""
    paths = sorted(glob.glob(osp.join(CONFIGS, '[!_]*', '*.py')))
    return [osp.relpath(p, CONFIGS) for p in paths
            if 'vkd_cls' not in p and _vkd_entries(p)]


def test_every_config_with_vkd_is_pinned():
    assert set(_with_vkd()) == set(EXPECTED)


@pytest.mark.parametrize('config', sorted(EXPECTED))
def test_vkd_settings(config):
    entries = _vkd_entries(osp.join(CONFIGS, config))
    assert list(entries) == ['vkd'], config
    entry = entries['vkd']
    effective = {key: entry.get(key, DEFAULTS[key]) for key in EXPECTED[config]}
    # the projector's own defaults count too (OrthogonalProjector's map is matrix_exp)
    projector = dict(effective['projector'])
    if projector['type'] == 'OrthogonalProjector':
        projector.setdefault('orthogonal_map', 'matrix_exp')
    assert dict(effective, projector=projector) == EXPECTED[config]
    # every level the two necks share: no level or stride subset
    assert 'levels' not in entry and 'strides' not in entry

"""The leaderboard's rows as data: which config of which proxy, with which loss weights.

``tools/bench_methods.py`` (:func:`~vkd_mmdet.benchmarks.leaderboard.run_leaderboard`) trains
every row of :data:`ROWS` of the proxies it runs for every seed (``make bench-methods``: FCOS and
Faster R-CNN; ``make bench-methods-gfl``: GFL); ``--diagnosis`` adds :data:`DIAGNOSIS_ROWS`. A
row names a config file of the demo config folder (``configs/demo``) and, optionally,
``--cfg-options`` of its own; adding a method is adding a line here.
"""
import os.path as osp
from typing import Dict, List, NamedTuple, Optional

from ..utils import configs_dir


class Row(NamedTuple):
    """One line of the table: a config of a proxy, and where its loss weights come from."""
    key: str  # run folder prefix, and the name --rows selects
    proxy: str
    label: str
    config: str
    weights: str  # 'paper' (published), 'ours', or what it inherits
    options: Optional[dict] = None  # config overrides of the row (the VkD diagnosis variants)


class Proxy(NamedTuple):
    """A teacher-student pair of the demo configs, its name in the tables, and how long its
    teacher trains (``tools/bench_methods.py --teacher-iters`` overrides it for every proxy)."""
    teacher: str
    student: str
    label: str
    teacher_iters: int = 600


def demo_config_dir() -> str:
    """``configs/demo`` of the source checkout (or of the installed package's copy).

    The real path: an editable install's ``.mim/configs`` is a link to the checkout's
    ``configs``, and a run's record stores its config relative to the working directory, which
    must not depend on how the package was installed (``--reuse-runs`` compares it).
    """
    return osp.realpath(osp.join(configs_dir(), 'demo'))


PROXIES: Dict[str, Proxy] = {
    'fcos': Proxy('teacher_fcos_r18-w32.py', 'student_fcos_r18-w16.py',
                  'one-stage: FCOS R18-w32 -> R18-w16, P3-P5'),
    'faster-rcnn': Proxy('teacher_faster-rcnn_r18-w32.py', 'student_faster-rcnn_r18-w16.py',
                         'two-stage: Faster R-CNN R18-w32 -> R18-w16, P2-P4'),
    # The head methods (LD, CrossKD) need a GFL head on both sides. 600 iterations leave the GFL
    # teacher at 9.5 AP, 1.2 above its student: too weak to rank methods by (every gain < 1.5
    # AP). At 1500 (22.9 AP, 6.6 min once) the gains are ten times larger and their order
    # changes (docs/vkd_diagnosis.md, section 7).
    'gfl': Proxy('teacher_gfl_r18-w32.py', 'student_gfl_r18-w16.py',
                 'one-stage, head distillation: GFL R18-w32 -> R18-w16, P3-P5', 1500),
}
#: The proxies of the page itself (``make bench-methods``): a run that covers them writes the
#: page; a run of others only (the GFL proxy at the seeds its intervals need) is a section of it.
PAGE_PROXIES = ('fcos', 'faster-rcnn')
_ONE = '_fcos_r18-w32_r18-w16.py'
_TWO = '_faster-rcnn_r18-w32_r18-w16.py'
_GFL = '_gfl_r18-w32_r18-w16.py'
# The feature methods and VkD's ablations, on both one-stage proxies: (key, label, where the
# loss weights come from). The config of a row is ``<key>_<pair>.py``.
_FEATURE_METHODS = [
    ('fitnet', 'FitNet', 'ours (1)'),
    ('cwd', 'CWD', 'paper (MMRazor: tau 1, 10)'),
    ('pkd', 'PKD', 'paper (6, of 6-10)'),
    ('srd', 'SRD', 'paper (2, ImageNet recipe)'),
    ('diffkd', 'DiffKD', 'paper (1, 1, 1)'),
    ('rtk', 'RTK', "AFD's beta (200); keys ours"),
    ('fgd', 'FGD', 'paper (FCOS: 1.6e-3, 8e-4, 8e-4, 8e-6, T 0.8)'),
    ('mgd', 'MGD', 'paper (one-stage: 2e-5, lambda 0.65)'),
    ('vkd', 'VkD', "authors' detection code (4)"),
    ('vkd-linear', 'VkD: free linear projector + norm.', "VkD's (4)"),
    ('vkd-nonorm', 'VkD: orthogonal projector, no norm.', "VkD's (4)"),
    ('vkd-linear-nonorm', 'VkD: linear projector, no norm.', "VkD's (4)"),
    ('vkd-cayley', 'VkD: cayley map', "VkD's (4)"),
    ('vkd-householder', 'VkD: householder map', "VkD's (4)"),
]


def _one_stage_rows(proxy: str, pair: str) -> List[Row]:
    return [Row('student', proxy, 'student alone', PROXIES[proxy].student, '-')] + [
        Row(key, proxy, label, key + pair, weights) for key, label, weights in _FEATURE_METHODS]


ROWS: List[Row] = [
    *_one_stage_rows('fcos', _ONE),
    Row('student', 'faster-rcnn', 'student alone', PROXIES['faster-rcnn'].student, '-'),
    Row('vkd', 'faster-rcnn', 'VkD', 'vkd' + _TWO, "authors' detection code (4)"),
    Row('nd', 'faster-rcnn', 'ND', 'nd' + _TWO, 'paper (KD++: 1.5)'),
    Row('kdpp', 'faster-rcnn', 'KD++', 'kdpp' + _TWO, 'paper (ND 1.5, KL 1)'),
    *_one_stage_rows('gfl', _GFL),
    Row('ld', 'gfl', 'LD', 'ld' + _GFL, 'paper (0.25, cls 10, VLR 0.25)'),
    Row('crosskd', 'gfl', 'CrossKD', 'crosskd' + _GFL, 'paper (GFL: 1, 4)'),
    Row('vkd-crosskd', 'gfl', 'VkD (FPN) + CrossKD (head)', 'vkd-crosskd' + _GFL,
        "each method's own"),
]
# VkD's diagnosis (--diagnosis, docs/vkd_diagnosis.md): one change each to the VkD row, compared
# with the leaderboard's rows of DIAGNOSIS_REFERENCE (same seeds, their runs reused).
_VKD = 'model.distill_losses.vkd.'
DIAGNOSIS_ROWS: List[Row] = [
    # smooth-L1 (beta 1) of standardised features is ~0.5 x MSE: weight 6 is PKD's 6 x MSE / 2.
    Row('vkd-w6', 'fcos', "VkD at PKD's loss scale", 'vkd' + _ONE, '6',
        {_VKD + 'loss_weight': 6.0}),
    Row('vkd-linear-w6', 'fcos', "VkD: free linear projector, PKD's loss scale",
        'vkd-linear' + _ONE, '6', {_VKD + 'loss_weight': 6.0}),
    # beta 4, weight 16: the same 2 x d^2 as beta 1, weight 4 below |d| = 1, quadratic up to 4.
    Row('vkd-beta4', 'fcos', 'VkD: smooth-L1 beta 4 (MSE-like, same scale)', 'vkd' + _ONE,
        '16 (beta 4)', {_VKD + 'beta': 4.0, _VKD + 'loss_weight': 16.0}),
    Row('vkd-plr10', 'fcos', 'VkD: projector learning rate x10', 'vkd' + _ONE, "VkD's (4)",
        {'optim_wrapper.paramwise_cfg.custom_keys': {
            'projector.raw_weight': dict(decay_mult=0.0, lr_mult=10.0)}}),
    Row('vkd-p3p4', 'fcos', 'VkD: P3-P4 only (no P5)', 'vkd' + _ONE, "VkD's (4)",
        {_VKD + 'strides': [8, 16]}),
    Row('vkd-padstats', 'fcos', 'VkD: statistics and mean over the padding too', 'vkd' + _ONE,
        "VkD's (4)", {_VKD + 'ignore_padding': False}),
]
# The gradient norms each feature method sends into the student (seed 0, first and last 50
# iterations), by DistillGradNormHook: it leaves the training run unchanged.
GRAD_NORM_HOOK = dict(type='DistillGradNormHook', ranges=[[0, 50], [-50, 0]])
#: Row-key suffix of the gradient-norm runs.
GRAD_SUFFIX = '+grad-norms'
# Issue 19's feature methods: what --sweep-weights tunes unless --rows says otherwise.
SWEEP_ROWS = ('vkd', 'fitnet', 'cwd', 'pkd', 'srd', 'diffkd', 'rtk')
CENTER_ROWS = ('nd', 'kdpp')  # rows that need the teacher's class centres
DIAGNOSIS_REFERENCE = ('student', *SWEEP_ROWS, 'vkd-linear')
#: The config ``tools/compute_class_centers.py`` reads for the rows of CENTER_ROWS.
ND_CONFIG = 'nd' + _TWO

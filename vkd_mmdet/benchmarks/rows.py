"""The leaderboard's rows as data: which config of which proxy, with which loss weights.

``make bench-methods`` (:func:`~vkd_mmdet.benchmarks.leaderboard.run_leaderboard`) trains every
row of :data:`ROWS` for every seed; ``--diagnosis`` adds :data:`DIAGNOSIS_ROWS`. A row names a
config file of the demo config folder (``configs/demo``) and, optionally, ``--cfg-options`` of its
own; adding a method is adding a line here.
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
    """A teacher-student pair of the demo configs, and its name in the tables."""
    teacher: str
    student: str
    label: str


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
    # The head methods (LD, CrossKD) need a GFL head on both sides.
    'gfl': Proxy('teacher_gfl_r18-w32.py', 'student_gfl_r18-w16.py',
                 'one-stage, head distillation: GFL R18-w32 -> R18-w16, P3-P5'),
}
_ONE = '_fcos_r18-w32_r18-w16.py'
_TWO = '_faster-rcnn_r18-w32_r18-w16.py'
_GFL = '_gfl_r18-w32_r18-w16.py'
ROWS: List[Row] = [
    Row('student', 'fcos', 'student alone', PROXIES['fcos'].student, '-'),
    Row('fitnet', 'fcos', 'FitNet', 'fitnet' + _ONE, 'ours (1)'),
    Row('cwd', 'fcos', 'CWD', 'cwd' + _ONE, 'paper (MMRazor: tau 1, 10)'),
    Row('pkd', 'fcos', 'PKD', 'pkd' + _ONE, 'paper (6, of 6-10)'),
    Row('srd', 'fcos', 'SRD', 'srd' + _ONE, 'paper (2, ImageNet recipe)'),
    Row('diffkd', 'fcos', 'DiffKD', 'diffkd' + _ONE, 'paper (1, 1, 1)'),
    Row('rtk', 'fcos', 'RTK', 'rtk' + _ONE, "AFD's beta (200); keys ours"),
    Row('fgd', 'fcos', 'FGD', 'fgd' + _ONE, 'paper (FCOS: 1.6e-3, 8e-4, 8e-4, 8e-6, T 0.8)'),
    Row('mgd', 'fcos', 'MGD', 'mgd' + _ONE, 'paper (one-stage: 2e-5, lambda 0.65)'),
    Row('vkd', 'fcos', 'VkD', 'vkd' + _ONE, "authors' detection code (4)"),
    Row('vkd-linear', 'fcos', 'VkD: free linear projector + norm.', 'vkd-linear' + _ONE,
        "VkD's (4)"),
    Row('vkd-nonorm', 'fcos', 'VkD: orthogonal projector, no norm.', 'vkd-nonorm' + _ONE,
        "VkD's (4)"),
    Row('vkd-linear-nonorm', 'fcos', 'VkD: linear projector, no norm.',
        'vkd-linear-nonorm' + _ONE, "VkD's (4)"),
    Row('vkd-cayley', 'fcos', 'VkD: cayley map', 'vkd-cayley' + _ONE, "VkD's (4)"),
    Row('vkd-householder', 'fcos', 'VkD: householder map', 'vkd-householder' + _ONE,
        "VkD's (4)"),
    Row('student', 'faster-rcnn', 'student alone', PROXIES['faster-rcnn'].student, '-'),
    Row('vkd', 'faster-rcnn', 'VkD', 'vkd' + _TWO, "authors' detection code (4)"),
    Row('nd', 'faster-rcnn', 'ND', 'nd' + _TWO, 'paper (KD++: 1.5)'),
    Row('kdpp', 'faster-rcnn', 'KD++', 'kdpp' + _TWO, 'paper (ND 1.5, KL 1)'),
    Row('student', 'gfl', 'student alone', PROXIES['gfl'].student, '-'),
    Row('vkd', 'gfl', 'VkD', 'vkd' + _GFL, "authors' detection code (4)"),
    Row('pkd', 'gfl', 'PKD', 'pkd' + _GFL, 'paper (6, of 6-10)'),
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

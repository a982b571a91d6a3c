"""`import vkd_mmdet` adds to mmdet's registries (``vkd_mmdet.classification`` to mmpretrain's) and
replaces nothing; neither it nor ``vkd_mmdet.testing`` imports mmpretrain."""
import json
import subprocess
import sys

SNAPSHOT = r'''
import json, sys
import mmdet.models, mmdet.engine, mmdet.evaluation, mmdet.datasets  # noqa: F401 (register)
import mmpretrain.models, mmpretrain.engine  # noqa: F401
from mmdet import registry as det
from mmpretrain import registry as cls

def snapshot():
    return {f'{scope}.{name}': {key: f'{obj.__module__}.{obj.__qualname__}'
                                for key, obj in getattr(module, name).module_dict.items()}
            for scope, module in (('mmdet', det), ('mmpretrain', cls))
            for name in ('MODELS', 'HOOKS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
                         'DATASETS', 'TRANSFORMS', 'METRICS')}

before = snapshot()
import vkd_mmdet.classification  # noqa: F401
after = snapshot()
json.dump({'before': before, 'after': after}, sys.stdout)
'''


def test_import_registers_our_modules_and_overrides_none_of_mmdets():
    out = subprocess.run([sys.executable, '-c', SNAPSHOT], check=True, capture_output=True,
                         text=True).stdout
    result = json.loads(out[out.index('{'):])
    before, after = result['before'], result['after']
    for registry, entries in before.items():
        for key, qualname in entries.items():
            assert after[registry][key] == qualname, f'{registry}[{key}] was replaced'
    added = {key: qualname for key, qualname in after['mmdet.MODELS'].items()
             if key not in before['mmdet.MODELS']}
    assert {'DetectionDistiller', 'VkDLoss', 'OrthogonalProjector'} <= set(added)
    assert all(qualname.startswith('vkd_mmdet.') for qualname in added.values())
    added_cls = set(after['mmpretrain.MODELS']) - set(before['mmpretrain.MODELS'])
    assert {'ClassifierDistiller', 'ConvStemDeiT', 'VkDClsLoss', 'LogitKDLoss'} <= added_cls
    assert 'LogitKDLoss' in added  # KD++ detection configs use it under the mmdet scope


def test_import_vkd_mmdet_leaves_mmpretrain_unimported():
    # A fresh interpreter: this test process may have imported mmpretrain already. (Building
    # from mmdet's registry imports all of mmdet.models, whose ReID preprocessor tries
    # `import mmpretrain` itself: that is mmdet's, so the probe only reads the registry.) The
    # detection tests' helpers neither: the classifiers' sit in vkd_mmdet.testing.tiny_classifiers.
    probe = ('import sys, vkd_mmdet, vkd_mmdet.testing; from mmdet.registry import MODELS; '
             "assert 'DetectionDistiller' in MODELS.module_dict; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mmpretrain', 'timm')))")
    out = subprocess.run([sys.executable, '-c', probe], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip().splitlines()[-1] == '[]'

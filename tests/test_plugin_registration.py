"""`import vkd_mmdet` adds to mmdet's / mmpretrain's registries and replaces nothing."""
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
import vkd_mmdet  # noqa: F401
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
    assert 'ClassifierDistiller' in after['mmpretrain.MODELS']

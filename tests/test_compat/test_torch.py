"""vkd_mmdet.compat.torch against the installed torch: the allow-list covers what a plain state
dict pickles, and a missing private function is a clear error."""
import pickletools
import zipfile

import pytest
import torch

from vkd_mmdet.compat import UpstreamAPIError
from vkd_mmdet.compat.torch import weights_only_allowed_globals


def _globals_in(path) -> set:
    """``module.name`` of every GLOBAL / STACK_GLOBAL the checkpoint's pickle references."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(name for name in archive.namelist()
                                 if name.endswith('data.pkl')))
    found, strings = set(), []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE'):
            strings.append(arg)
        elif opcode.name == 'STACK_GLOBAL':
            found.add(f'{strings[-2]}.{strings[-1]}')
        elif opcode.name == 'GLOBAL':
            found.add(arg.replace(' ', '.'))
    return found


def test_allow_list_covers_a_state_dict_and_refuses_the_rest(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save(torch.nn.Conv2d(2, 3, 1).state_dict(), path)
    allowed = weights_only_allowed_globals()
    referenced = _globals_in(path)
    assert referenced and referenced <= set(allowed)
    assert allowed['collections.OrderedDict'] is __import__('collections').OrderedDict
    assert 'os.system' not in allowed and 'builtins.eval' not in allowed


def test_missing_private_function_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(torch._weights_only_unpickler, '_get_allowed_globals')
    with pytest.raises(UpstreamAPIError, match=r'^torch \S+: torch\._weights_only_unpickler\.'
                       r'_get_allowed_globals is missing.*safe checkpoint loader'):
        weights_only_allowed_globals()

"""torch compatibility: the private torch API the safe checkpoint loader needs on torch < 2.6.

Checked with torch 2.1.2 and 2.14.1 (the two pinned stacks, ``requirements/pinned*.txt``).
``tests/test_compat/test_torch.py`` checks it against the installed torch.
"""
from typing import Any, Dict

import torch

from .upstream_api import upstream_attribute

#: The torch versions the adapter below was checked with.
CHECKED = '2.1.2, 2.14.1'


def weights_only_allowed_globals() -> Dict[str, Any]:
    """torch's own allow-list of ``torch.load(weights_only=True)``: ``{'module.name': object}``
    (tensor rebuilders, storages, dtypes, ``OrderedDict``, ...).

    Relies on ``torch._weights_only_unpickler._get_allowed_globals()`` (private): torch < 2.6 has
    no public accessor (and no ``torch.serialization.safe_globals`` to extend the list), so the
    safe loader enforces this list with its own unpickler there.
    """
    # torch.serialization imports the module, so it is an attribute of torch once torch loads.
    allowed = upstream_attribute(torch, '_weights_only_unpickler._get_allowed_globals', 'torch',
                                 CHECKED, (),
                                 needed_for='the safe checkpoint loader on torch < 2.6')
    return dict(allowed())

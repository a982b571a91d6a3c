"""The scripts of ``tools/`` as modules, for tests that call into them in-process."""
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

import pytest

TOOLS = Path(__file__).resolve().parents[1] / 'tools'


def load_tool(relative: str) -> ModuleType:
    """``tools/<relative>`` (e.g. ``'train.py'``, ``'analysis/vis_features.py'``), freshly
    executed: the tools are scripts, not a package, so ``import`` does not reach them."""
    name = 'vkd_tools_' + '_'.join(Path(relative).with_suffix('').parts)
    spec = importlib.util.spec_from_file_location(name, TOOLS / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_interrupted(monkeypatch: pytest.MonkeyPatch, tool: ModuleType, argv: Sequence[str],
                    step: str, after_calls: int) -> None:
    """``tool.main()`` on ``argv`` (as ``sys.argv``), stopped as Ctrl-C stops it: the call of
    ``tool.<step>`` after ``after_calls`` completed ones raises ``KeyboardInterrupt``. ``step``
    is put back afterwards, so the next ``main()`` (the resumed run) runs unhindered."""
    real, calls = getattr(tool, step), []

    def interrupting(*args):
        if len(calls) == after_calls:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(tool, step, interrupting)
    monkeypatch.setattr(sys, 'argv', list(argv))
    with pytest.raises(KeyboardInterrupt):
        tool.main()
    monkeypatch.setattr(tool, step, real)

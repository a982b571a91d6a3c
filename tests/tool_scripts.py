"""The scripts of ``tools/``: as modules, for tests that call into them in-process, and as
subprocesses, for tests that run them end to end."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / 'tools'


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


def subprocess_env() -> dict:
    """Environment of tool subprocesses: the repo and the probe hooks importable, one thread
    per process (the CI machine has 2 cores)."""
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests'),
                                           os.environ.get('PYTHONPATH', '')]))


def run_python(args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python args...``; fail with its output when it fails."""
    env = subprocess_env()
    env.update(kwargs.pop('env', {}))
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                            timeout=timeout, cwd=kwargs.pop('cwd', str(REPO)), **kwargs)
    assert result.returncode == 0, \
        f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}'
    return result

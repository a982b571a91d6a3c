"""The package's import graph: no circle, and no import from a lower layer to a higher one.

Layers, lowest first: ``compat`` (one module per upstream package: the undocumented upstream
APIs vkd_mmdet relies on) <- ``utils`` (checkpoints, model configs, tool set-up, RNG states) <-
``models`` <- ``apis`` (the functions behind the tools) <- ``engine`` (runner hooks and wrappers:
thin adapters over the layers below, e.g. ``ExportStudentHook`` over ``apis.export_student``) <-
``testing`` (tiny models and data for tests, demos and benchmarks) <- ``benchmarks`` (the demo and
the leaderboard: rows, runs, reports). ``vkd_mmdet/__init__.py`` imports all but ``testing`` and
``benchmarks``.
"""
import ast
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'vkd_mmdet'
LAYERS = ['compat', 'utils', 'models', 'apis', 'engine', 'testing', 'benchmarks']


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(source: str, module: str, is_package: bool, modules: Set[str]) -> Set[str]:
    """The ``vkd_mmdet`` modules ``module`` imports; ``from a import b`` counts ``a.b`` when it
    is a module. Imports inside functions count too: a deferred import is still a dependency."""
    package = module if is_package else module.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target.split('.')[0] == 'vkd_mmdet')
    return found


def _graph() -> Dict[str, Set[str]]:
    paths = sorted(PACKAGE.rglob('*.py'))
    modules = {_module_name(path) for path in paths}
    graph = {}
    for path in paths:
        name, is_package = _module_name(path), path.name == '__init__.py'
        # A package's __init__ re-exporting its own submodules is not a dependency of theirs.
        graph[name] = {target for target in _imports(path.read_text(), name, is_package, modules)
                       if target != name and not (is_package and target.startswith(name + '.'))}
    return graph


def _layer(module: str) -> int:
    parts = module.split('.')
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def _upward(graph: Dict[str, Set[str]]) -> list:
    return [f'{module} -> {target}' for module, targets in sorted(graph.items())
            for target in sorted(targets)
            if module != 'vkd_mmdet' and _layer(target) > _layer(module)]


def _circle(graph: Dict[str, Set[str]]):
    state: Dict[str, str] = {}

    def visit(module, stack):
        state[module] = 'open'
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target, stack + [target])
                if found:
                    return found
        state[module] = 'done'
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_reaches_a_higher_layer():
    upward = _upward(_graph())
    assert not upward, 'imports against the layering:\n' + '\n'.join(upward)


def test_import_graph_has_no_circle():
    circle = _circle(_graph())
    assert circle is None, 'import circle: ' + ' -> '.join(circle)


@pytest.mark.parametrize('source', ['from ...engine import trusted_checkpoints',
                                    'def f():\n    from ...engine import hooks'])
def test_the_walk_reports_an_upward_or_deferred_import(source):
    module = 'vkd_mmdet.models.losses.x'
    modules = {'vkd_mmdet.engine', 'vkd_mmdet.engine.hooks', 'vkd_mmdet.models.losses', module}
    graph = {module: _imports(source, module, False, modules)}
    assert _upward(graph)


def test_the_walk_reports_a_circle():
    assert _circle({'vkd_mmdet.a': {'vkd_mmdet.b'}, 'vkd_mmdet.b': {'vkd_mmdet.a'}})


def test_each_subpackage_attribute_is_that_subpackage():
    # `import vkd_mmdet.utils as u` reads the attribute `utils` of the package: a star import in
    # vkd_mmdet/__init__.py that re-binds it (e.g. to vkd_mmdet.models.utils) hands out another
    # package under the name.
    import vkd_mmdet
    import vkd_mmdet.utils as utils
    assert utils is sys.modules['vkd_mmdet.utils']
    aliases = {name: module.__name__ for name, module in vars(vkd_mmdet).items()
               if isinstance(module, ModuleType) and module.__name__ != f'vkd_mmdet.{name}'}
    assert not aliases, f'attributes of vkd_mmdet naming another module: {aliases}'

"""The package's import arrows point one way: read with ``ast``, nothing imported.

Layers, bottom up: ``core/world`` (geometry and dynamics) < ``core/episode`` (reward,
termination) < ``core/envs`` (simulators); the whole of ``core`` is ROS-free and below the
ROS side. An import inside a function is still an arrow (it runs the moment the function
does), so lazy imports count; every message marks them ``lazy``.
"""

import ast
from dataclasses import dataclass
from pathlib import Path
import textwrap

import pytest

PACKAGE = 'ilrl_ros'
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

# rclpy, the ROS 2 Python tooling a node or a bag needs, and the message packages the nodes
# use. ament_index_python is allowed: spec.tasks_dir asks it, guarded, where an installed
# package keeps its task specs, and it needs no ROS runtime.
ROS_MODULES = ('rclpy', 'rosidl_runtime_py', 'rosbag2_py', 'launch', 'launch_ros',
               'std_msgs', 'sensor_msgs', 'geometry_msgs', 'nav_msgs', 'builtin_interfaces',
               'rcl_interfaces', 'rosgraph_msgs', 'std_srvs')


@dataclass(frozen=True)
class Arrow:
    """One import statement of ours: who imports what, where, and whether inside a function."""

    source: str
    target: str
    path: Path
    line: int
    lazy: bool

    def __str__(self) -> str:
        where = f'{self.path.relative_to(ROOT.parent)}:{self.line}'
        return f'{self.source} -> {self.target} ({where}{", lazy" if self.lazy else ""})'


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or \
        (isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _is_main_guard(test: ast.expr) -> bool:
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and \
        test.left.id == '__name__' and len(test.comparators) == 1 and \
        isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == '__main__'


class _Imports(ast.NodeVisitor):
    """Every import statement of one file with its line and whether it sits in a function."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.package = module if is_package else module.rpartition('.')[0]
        self.depth = 0
        self.found = []  # (imported module, the names taken from it, line, lazy)

    def _in_function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _in_function

    def visit_If(self, node: ast.If) -> None:
        # Annotations only, or the file run as a script (then it is __main__, and importing
        # the module by its own name loads a second copy): no arrow from this module.
        if _is_type_checking(node.test) or _is_main_guard(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, (), node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ''
        if node.level:
            anchor = self.package.split('.')
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = '.'.join(anchor + ([base] if base else []))
        names = tuple(alias.name for alias in node.names)
        self.found.append((base, names, node.lineno, self.depth > 0))


def _scan() -> tuple:
    """Return (our module names, every arrow from one of our modules to any module)."""
    files = {_module_name(p): p for p in sorted(ROOT.rglob('*.py'))}
    arrows = []
    for module, path in files.items():
        visitor = _Imports(module, path.name == '__init__.py')
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for target, names, line, lazy in visitor.found:
            # `from pkg import sub` imports the module pkg.sub when there is one.
            submodules = [f'{target}.{n}' for n in names if f'{target}.{n}' in files]
            for hit in submodules or [target]:
                arrows.append(Arrow(module, hit, path, line, lazy))
    return set(files), arrows


MODULES, ARROWS = _scan()


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + '.')


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + '.')


def _cycles(arrows) -> list:
    """The strongly connected groups of more than one module (or a module importing itself)."""
    graph = {}
    for a in arrows:
        if a.target in MODULES:
            graph.setdefault(a.source, set()).add(a.target)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm; the package is small enough for the recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(frozenset(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _describe(group, arrows) -> str:
    inside = [a for a in arrows if a.source in group and a.target in group]
    return '\n'.join(f'  {a}' for a in sorted(inside, key=lambda a: (a.source, a.line)))


def test_the_scan_sees_the_package():
    assert {'ilrl_ros.core.spec', 'ilrl_ros.core.world', 'ilrl_ros.core.episode',
            'ilrl_ros.core.episode.reward', 'ilrl_ros.nodes.policy'} <= MODULES
    assert any(a.lazy for a in ARROWS) and any(not a.lazy for a in ARROWS)


def test_no_file_imports_itself_back():
    cycles = _cycles(ARROWS)
    assert not cycles, 'import cycles (an arrow that runs back up):\n' + '\n'.join(
        f'{sorted(g)}:\n{_describe(g, ARROWS)}' for g in cycles)


def test_the_core_imports_no_ros_and_nothing_above_it():
    core = f'{PACKAGE}.core'
    wrong = [a for a in ARROWS if _under(a.source, core) and (
        any(_under(a.target, ros) for ros in ROS_MODULES) or
        (_ours(a.target) and not _under(a.target, core)))]
    assert not wrong, 'the core must stay ROS-free and below the ROS side:\n' + '\n'.join(
        f'  {a}' for a in wrong)


@pytest.mark.parametrize('lower, above', [
    ('ilrl_ros.core.episode', ('ilrl_ros.core.envs', 'ilrl_ros.core.tasks')),
    ('ilrl_ros.core.world', ('ilrl_ros.core.envs', 'ilrl_ros.core.tasks',
                             'ilrl_ros.core.episode', 'ilrl_ros.core.experts')),
])
def test_reward_and_geometry_sit_below_the_simulators(lower, above):
    wrong = [a for a in ARROWS if _under(a.source, lower)
             and any(_under(a.target, up) for up in above)]
    assert not wrong, f'{lower} must not import {", ".join(above)}:\n' + '\n'.join(
        f'  {a}' for a in wrong)


def test_the_visitor_on_a_known_file():
    source = textwrap.dedent("""
        import numpy as np
        from . import sibling
        from ..world import track_geometry
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from ilrl_ros.core.envs import pendulum
        def f():
            from ilrl_ros.core.spec import TaskSpec
        if __name__ == '__main__':
            import ilrl_ros.core.episode.reward
    """)
    visitor = _Imports('ilrl_ros.core.episode.reward', is_package=False)
    visitor.visit(ast.parse(source))
    assert visitor.found == [('numpy', (), 2, False),
                             ('ilrl_ros.core.episode', ('sibling',), 3, False),
                             ('ilrl_ros.core.world', ('track_geometry',), 4, False),
                             ('typing', ('TYPE_CHECKING',), 5, False),
                             ('ilrl_ros.core.spec', ('TaskSpec',), 9, True)]
    lazy = Arrow('ilrl_ros.core.tasks', 'ilrl_ros.core.envs.pendulum',
                 ROOT / 'core' / 'tasks.py', 21, True)
    assert str(lazy) == ('ilrl_ros.core.tasks -> ilrl_ros.core.envs.pendulum '
                         '(ilrl_ros/core/tasks.py:21, lazy)')

"""The package's layout: imports run one way, and Keras internals stay in one
module. Read from the source with `ast`, so nothing is imported."""

import ast

from tests.conftest import ROOT

PACKAGE = ROOT / 'tf_prune'
# Lower ranks serve higher ones, never the other way round. Capability
# packages (compat, sensitivity, tfmot, ...) sit above export and
# structured, which sensitivity builds on.
RANKS = {'core': 0, 'keras': 1, 'export': 2, 'structured': 3}
CAPABILITY_RANK = 4
TOP_RANK = 5
# The only module that may reach into Keras' private members.
KERAS_INTERNALS = 'tf_prune.keras._internals'
PRIVATE_KERAS = {'_flatten_layers', '_tracker', '_trackable_children',
                 '_functional', '_nodes_by_depth', '_inbound_nodes',
                 '_input_shape_arg'}


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def modules():
    """`{module name: parsed source}` of every module of the package."""
    return {module_name(path): ast.parse(path.read_text(), str(path))
            for path in sorted(PACKAGE.rglob('*.py'))}


def imported(tree, known):
    """The `tf_prune` modules a module imports, as names in `known`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f'{node.module}.{alias.name}' for alias in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        found.update(n for n in names if n.split('.')[0] == 'tf_prune')
    return found


def rank(name):
    parts = name.split('.')
    if len(parts) == 1:
        return TOP_RANK
    return RANKS.get(parts[1], CAPABILITY_RANK)


def upward_imports(graph):
    """`(importer, imported)` pairs that run from a lower rank up."""
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if rank(b) > rank(a))


def find_cycle(graph):
    """One cycle of the import graph as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 'open':
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def import_graph():
    trees = modules()
    return {name: imported(tree, trees) - {name}
            for name, tree in trees.items()}


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = {'tf_prune.core.a': {'tf_prune.keras.b'},
             'tf_prune.keras.b': {'tf_prune.keras.c'},
             'tf_prune.keras.c': {'tf_prune.keras.b'}}
    assert upward_imports(graph) == [('tf_prune.core.a', 'tf_prune.keras.b')]
    assert find_cycle(graph) == ['tf_prune.keras.b', 'tf_prune.keras.c',
                                 'tf_prune.keras.b']


def test_imports_run_one_way_without_cycles():
    graph = import_graph()
    assert {'tf_prune.core.hparams', 'tf_prune.keras.wrapper',
            'tf_prune.export.writers'} <= set(graph)
    assert upward_imports(graph) == []
    assert find_cycle(graph) is None


def test_core_is_tensorflow_only():
    for name, tree in modules().items():
        if rank(name) != 0:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split('.')[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = [node.module.split('.')[0]]
            else:
                continue
            assert 'keras' not in roots, f'{name} imports Keras'


def test_keras_internals_are_reached_in_one_module():
    for name, tree in modules().items():
        if name == KERAS_INTERNALS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith('keras.src'), name
            if isinstance(node, ast.Attribute):
                assert node.attr not in PRIVATE_KERAS, (name, node.attr)
            if isinstance(node, ast.FunctionDef):
                assert node.name not in PRIVATE_KERAS, (name, node.name)


def test_the_library_imports_no_script():
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split('.')[0] not in (
                    'tools', 'examples', 'benchmarks', 'tests'), name

"""Bad files through both tools: one line on stderr, exit 2, nothing written.

The table `CASES` holds one row per bad input: how to make it from a small
real model (trained once for the module), and the line the tools print
(after their name). Each tool runs every row in one process, as a user runs
it but with flags parsed again per row (`tests/helpers/tool_driver.py`),
which captures each row's file descriptors 1 and 2, so TensorFlow's own
output would show too. Only `--verbose` lets TensorFlow's logs through, and
the environment does not set TF_CPP_MIN_LOG_LEVEL, as a user's does not.
"""

import collections.abc
import dataclasses
import os
import shutil

import numpy as np
import pytest

from tests.conftest import GOLDEN_DIR, ROOT
from tests.helpers.small_model import trained_pruned_mlp
from tests.helpers.tool_driver import refusal_line, run_rows

TOOLS = {'strip': ROOT / 'tools' / 'strip_pruning_vars.py',
         'inspect': ROOT / 'tools' / 'inspect_sparsity.py'}
PREFIX = {'strip': 'strip_pruning_vars: ', 'inspect': 'inspect_sparsity: '}
TF1_FIXTURE = GOLDEN_DIR / 'conv'
DATA = 'ckpt-8.data-00000-of-00001'
STATE_FIX = ('; to use its newest checkpoint, write \'model_checkpoint_path: '
             '"ckpt-8"\' into it')
# Smaller than any SavedModel's saved_model.pb: the full disk of one row.
FILE_SIZE_LIMIT = 2000


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
      name: the row's name.
      make: `make(base, path)` creates the bad input at `path` from the
        files in `base` (see `base`).
      line: what the tools print after their name, or `{tool: line}` when
        they differ; `{input}` and `{out}` stand for the input's path and
        the output directory. The line printed starts with it.
      suffix: the input's file name extension.
      tools: the tools the row runs through.
      flags: more flags for strip_pruning_vars.
      file_size_limit: RLIMIT_FSIZE for the row (a full disk).
    """
    name: str
    make: collections.abc.Callable
    line: object
    suffix: str = ''
    tools: tuple = ('strip', 'inspect')
    flags: tuple = ()
    file_size_limit: int = None

    def line_of(self, tool):
        return self.line[tool] if isinstance(self.line, dict) else self.line


def _copy(source):
    def make(base, path):
        shutil.copytree(base / source, path)
    return make


def _edit(source, name, edit):
    """Copies directory `source`, then rewrites its file `name` as `edit`
    says (`edit(bytes) -> bytes`, or None to delete it)."""
    def make(base, path):
        shutil.copytree(base / source, path)
        data = edit((path / name).read_bytes())
        if data is None:
            (path / name).unlink()
        else:
            (path / name).write_bytes(data)
    return make


def _file(content):
    """A file whose bytes are `content(base)`."""
    def make(base, path):
        path.write_bytes(content(base))
    return make


def _flip(data):
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    return bytes(flipped)


def _random(size):
    return np.random.default_rng(size).bytes(size)


def _saved_model_of_random_bytes(base, path):
    path.mkdir()
    (path / 'saved_model.pb').write_bytes(_random(500))


def _random_files(base, path):
    path.mkdir()
    for name in ('a', 'b.bin'):
        (path / name).write_bytes(_random(100))


NOT_A_MODEL = ('{input} is not a .keras file, a SavedModel or a checkpoint '
               'directory')
NO_CHECKPOINT = ('no checkpoint in {input}: no "checkpoint" file or .index '
                 'file; give a checkpoint or training directory, a SavedModel '
                 'or a .keras file')

CASES = [
    # A tf_prune training directory (ckpt-4 and ckpt-8) and its damage.
    Case('data_truncated', _edit('train', DATA, lambda d: d[:len(d) // 2]),
         'checkpoint {input}/ckpt-8 is unreadable: {input}/' + DATA
         + ' is truncated'),
    Case('data_bit_flipped', _edit('train', DATA, _flip),
         'checkpoint {input}/ckpt-8 is unreadable: {input}/' + DATA
         + ' fails its checksum: its bytes changed since it was written'),
    Case('data_deleted', _edit('train', DATA, lambda d: None),
         'checkpoint {input}/ckpt-8 is unreadable: {input}/' + DATA
         + ' is missing'),
    Case('index_empty', _edit('train', 'ckpt-8.index', lambda d: b''),
         'checkpoint {input}/ckpt-8 is unreadable: {input}/ckpt-8.index is '
         'empty'),
    Case('index_truncated', _edit('train', 'ckpt-8.index', lambda d: d[:100]),
         'checkpoint {input}/ckpt-8 is unreadable: {input}/ckpt-8.index is '
         'not a checkpoint index ('),
    Case('state_garbage', _edit('train', 'checkpoint', lambda d: _random(200)),
         '{input}/checkpoint is not a checkpoint state file (binary, not '
         'text)' + STATE_FIX),
    Case('state_empty', _edit('train', 'checkpoint', lambda d: b''),
         '{input}/checkpoint names no checkpoint' + STATE_FIX),
    Case('state_text', _edit('train', 'checkpoint', lambda d: b'hello\n'),
         '{input}/checkpoint is not a checkpoint state file (1:1 : Message '
         'type "tensorflow.CheckpointState" has no field named "hello".)'
         + STATE_FIX),
    Case('state_names_a_missing_checkpoint',
         _edit('train', 'checkpoint', lambda d: d.replace(b'ckpt-8', b'ckpt-9')),
         'checkpoint {input}/ckpt-9 is unreadable: {input}/ckpt-9.index is '
         'missing'),
    Case('model_config_garbage',
         _edit('train', 'tf_prune_model.json', lambda d: d[:50]),
         '{input}/tf_prune_model.json is unreadable: '),
    # Directories with no model.
    Case('empty_directory', lambda base, path: path.mkdir(), NO_CHECKPOINT),
    Case('random_files', _random_files, NO_CHECKPOINT),
    Case('missing', lambda base, path: None, '{input} does not exist'),
    # contrib's TF1 checkpoint (its graph needs --output_node_names).
    Case('tf1_data_truncated',
         _edit('tf1', 'model.ckpt-45.data-00000-of-00001',
               lambda d: d[:len(d) // 2]),
         'checkpoint {input}/model.ckpt-45 is unreadable: {input}/'
         'model.ckpt-45.data-00000-of-00001 is truncated',
         flags=('--output_node_names=probabilities',)),
    Case('tf1_meta_deleted', _edit('tf1', 'model.ckpt-45.meta', lambda d: None),
         'checkpoint {input}/model.ckpt-45 has no .meta graph ({input}/'
         'model.ckpt-45.meta is missing)',
         flags=('--output_node_names=probabilities',)),
    Case('saved_model_of_random_bytes', _saved_model_of_random_bytes,
         'SavedModel {input} is unreadable: '),
    # .keras files (strip_pruning_vars reads them too).
    Case('keras_empty', _file(lambda base: b''),
         '{input} is not a readable .keras file: it is empty', '.keras'),
    Case('keras_truncated',
         _file(lambda base: (base / 'pruned.keras').read_bytes()[:1000]),
         '{input} is not a readable .keras file: it is not a zip archive '
         '(truncated, or another kind of file)', '.keras'),
    Case('keras_random', _file(lambda base: _random(1000)),
         '{input} is not a readable .keras file: it is not a zip archive '
         '(truncated, or another kind of file)', '.keras'),
]
# Frozen GraphDefs and TFLite files: inspect_sparsity reads them, and
# strip_pruning_vars says what it reads instead.
NOT_A_GRAPH = ('{input} is not a frozen GraphDef (truncated, or another '
               'kind of file)')
CASES += [
    Case(name, _file(content), {'inspect': line, 'strip': NOT_A_MODEL}, suffix)
    for name, suffix, content, line in [
        ('pb_random', '.pb', lambda base: _random(1000), NOT_A_GRAPH),
        ('pb_text', '.pb', lambda base: b'a frozen graph, honest\n',
         NOT_A_GRAPH),
        ('pb_truncated', '.pb',
         lambda base: (base / 'model.pb').read_bytes()[:1000], NOT_A_GRAPH),
        ('pb_tflite_renamed', '.pb',
         lambda base: (base / 'model.tflite').read_bytes(),
         '{input} is a TFLite file, not a frozen GraphDef; rename it to '
         '.tflite'),
        ('pb_empty', '.pb', lambda base: b'',
         '{input} is empty: not a frozen GraphDef'),
        ('tflite_random', '.tflite', lambda base: _random(1000),
         '{input} is not a TFLite file (no TFL3 identifier)'),
        ('tflite_empty', '.tflite', lambda base: b'',
         '{input} is empty: not a TFLite file'),
        ('tflite_truncated', '.tflite',
         lambda base: (base / 'model.tflite').read_bytes()[:1000],
         '{input} is a damaged TFLite file (truncated?): '),
    ]]
CASES += [
    # What strip_pruning_vars writes, from the intact training directory.
    Case('full_disk_saved_model', _copy('train'),
         'cannot write {out}/pruning_stripped: File too large',
         tools=('strip',), flags=('--output_format=saved_model',),
         file_size_limit=FILE_SIZE_LIMIT),
    Case('int8_data_of_the_wrong_shape', _copy('train'),
         '--representative_data holds examples of shape (7,); the model '
         'takes (10,) (one example per row)', tools=('strip',),
         flags=('--output_format=tflite', '--quantize=int8',
                '--representative_data={base}/wrong_shape.npy')),
]


def _fill(text, case_input, out, base):
    return text.format(input=case_input, out=out, base=base)


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    """A pruned model trained with a training directory (ckpt-4, ckpt-8),
    as a .keras file, a frozen GraphDef and a TFLite file; contrib's TF1
    checkpoint; and representative data of the wrong shape."""
    import tf_prune  # pylint: disable=import-outside-toplevel

    root = tmp_path_factory.mktemp('base')
    model, _ = trained_pruned_mlp(
        root / 'train', 16, 'sgd',
        'begin_pruning_step=0,target_sparsity=0.5,'
        'sparsity_function_end_step=4')
    model.save(root / 'pruned.keras')
    tf_prune.export.frozen_graph(model, root / 'model.pb')
    tf_prune.export.tflite(model, root / 'model.tflite')
    shutil.copytree(TF1_FIXTURE, root / 'tf1')
    np.save(root / 'wrong_shape.npy', np.zeros((4, 7), np.float32))
    return root


def _args(tool, case, case_input, out, base_dir):
    if tool == 'inspect':
        return [str(case_input)]
    flags = [_fill(flag, case_input, out, base_dir) for flag in case.flags]
    return [f'--model={case_input}', f'--output_dir={out}', *flags]


def _tree(directory):
    """Every path under `directory` but the tools' output directories."""
    return sorted(str(path.relative_to(directory))
                  for path in directory.rglob('*')
                  if not path.relative_to(directory).parts[0].startswith('out_'))


@pytest.fixture(scope='module')
def results(base, tmp_path_factory):
    """`{(tool, case name): (result, input path, output directory)}` from
    one driver run per tool; each run checked to leave the inputs as they
    were (no lock, temporary or output beside them)."""
    cases_dir = tmp_path_factory.mktemp('cases')
    inputs = {}
    for case in CASES:
        inputs[case.name] = cases_dir / (case.name + case.suffix)
        case.make(base, inputs[case.name])
    found = {}
    for tool in TOOLS:
        cases = [case for case in CASES if tool in case.tools]
        outs = {case.name: cases_dir / f'out_{tool}_{case.name}'
                for case in cases}
        plan = [{'name': case.name,
                 'args': _args(tool, case, inputs[case.name],
                               outs[case.name], base),
                 'file_size_limit': case.file_size_limit} for case in cases]
        before = _tree(cases_dir)
        rows = run_rows(TOOLS[tool], plan, cases_dir.parent)
        assert _tree(cases_dir) == before
        for case in cases:
            found[tool, case.name] = (rows[case.name], inputs[case.name],
                                      outs[case.name])
    return found


@pytest.mark.parametrize('tool,case', [
    (tool, case) for case in CASES for tool in TOOLS if tool in case.tools],
    ids=lambda value: getattr(value, 'name', value))
def test_bad_file_is_one_line_exit_2_and_nothing_written(
        results, base, tool, case):
    result, case_input, out = results[tool, case.name]
    line = refusal_line(result)
    expected = PREFIX[tool] + _fill(case.line_of(tool), case_input, out, base)
    assert line.startswith(expected), line
    # No output and no temporary: bad input found before writing leaves no
    # output directory; a write that failed, an empty one.
    assert not out.exists() or not list(out.iterdir())

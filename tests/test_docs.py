"""The code blocks of README.md and docs/*.md, found by name, run or checked.

Every fenced block has a marker on the line before it, `<!-- block: NAME -->`;
a block without one, or a name used twice, fails. What a block gets depends on
its language and name:

- ```python blocks are exec'd, each in a fresh namespace after
  `keras.backend.clear_session()`, with the cwd a fresh temporary directory
  (holding a link `tests/data` to the repository's test data, so a block reads
  contrib's checkpoint by the path the shell blocks use). `PYTHON_CHECKS[name]`
  then asserts on the namespace.
- ```sh blocks: every command must run the project's environment
  (`.venv/bin/python`, `.venv/bin/tensorboard`, `make`, or Bazel with
  `$PWD/.venv/bin` first on PATH); a bare `python` fails on a fresh machine.
  Blocks in `RUN` are run verbatim from the repository root, each command in
  turn, and must exit with the status listed. Blocks in `CHECKED` are too slow
  for this suite (training, Bazel, the whole suite, a server); each is compared
  with what runs it elsewhere: the Makefile, the examples' flag defaults,
  BUILD files.
- A ```text block named `<block>.output` right after a block is what that
  block prints today, compared exactly up to these normalisations:
  * `/tmp` in a block (Python source, commands, outputs) stands for a
    temporary directory of this test, so nothing is written outside it or
    into the repository; the directory's path in an output reads `/tmp` again;
  * a command prints its stdout, then its stderr without TensorFlow's
    start-up lines (`TF_STARTUP`), which are not the command's; tabs are
    expanded to 8-column stops, as a terminal shows them;
  * a Python block prints what it prints, and what it logs through absl at
    WARNING or above as `WARNING:absl:<message>` (Python's format before absl
    is initialised, which is what a script shows);
  * trailing spaces and trailing blank lines do not count;
  * a block with a line `...` is an excerpt: its lines appear in this order,
    each `...` line standing for any number of lines, and a line ending in
    ` ...` for any line that starts with the text before it.
  Outputs of `CHECKED` blocks come from a real run pasted into the docs; what
  can be checked without the run is, in `CHECKED_OUTPUTS`.
"""

import ast
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import linecache
import logging
import os
import pathlib
import re
import shlex
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT

DOCS = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))
MARKER = re.compile(r'^<!-- block: (\S+) -->$')
LANGUAGES = ('python', 'sh', 'text')
# TensorFlow's own start-up lines on stderr.
TF_STARTUP = ('WARNING: All log messages before absl::InitializeLog()',
              'I0000 ', 'To enable the following instructions:')
TMP_PATH = re.compile(r'(?<![\w./])/tmp(?=/|\b)')
VENV_PATH = 'PATH="$PWD/.venv/bin:$PATH"'


@dataclasses.dataclass
class Block:
    name: str
    language: str
    text: str
    doc: str
    line: int


def _read_blocks(path):
    """`(blocks, problems)` of one Markdown file."""
    blocks, problems = [], []
    lines = path.read_text().split('\n')
    where = path.relative_to(ROOT)
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        marker = MARKER.match(stripped)
        if marker and not (i + 1 < len(lines)
                           and lines[i + 1].strip().startswith('```')):
            problems.append(f'{where}:{i + 1}: marker {marker.group(1)} is '
                            f'not on the line before a block')
        if not stripped.startswith('```'):
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        language = stripped[3:].strip()
        previous = MARKER.match(lines[i - 1].strip()) if i else None
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != '```':
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip()
                        else line.lstrip())
            i += 1
        start = i - len(body)
        if previous is None:
            problems.append(f'{where}:{start}: a ```{language} block has no '
                            f'<!-- block: NAME --> marker on the line before')
        else:
            blocks.append(Block(previous.group(1), language,
                                '\n'.join(body) + '\n', str(where), start))
        i += 1
    return blocks, problems


def read_docs():
    blocks, problems = [], []
    for path in DOCS:
        found, wrong = _read_blocks(path)
        blocks += found
        problems += wrong
    return blocks, problems


BLOCKS, PROBLEMS = read_docs()
BY_NAME = {block.name: block for block in BLOCKS}


def _blocks(language):
    return [b.name for b in BLOCKS if b.language == language]


def _output_of(name):
    return BY_NAME.get(name + '.output')


# ---------------------------------------------------------------- commands


def commands(text):
    """The commands of a shell block: continuations joined, comments dropped."""
    joined = re.sub(r'\\\n\s*', ' ', text)
    result = []
    for line in joined.split('\n'):
        line = re.sub(r'\s+#.*$', '', line).strip()
        if line and not line.startswith('#'):
            result.append(line)
    return result


def _words(command):
    return shlex.split(command, posix=True)


def _program(command):
    """The program a command runs, and whether `.venv/bin` leads its PATH."""
    words = _words(command)
    venv_path = False
    while words and re.match(r'^\w+=', words[0]):
        if words[0] == 'PATH=$PWD/.venv/bin:$PATH':
            venv_path = True
        words = words[1:]
    return (words[0] if words else ''), venv_path


def _command_problem(command):
    program, venv_path = _program(command)
    if program in ('.venv/bin/python', '.venv/bin/tensorboard', 'make'):
        return None
    if program == 'bazel' or program.startswith('bazel-bin/'):
        return None if venv_path else (
            f'{command!r}: Bazel runs tools with the Python on PATH; put '
            f'{VENV_PATH} first')
    return (f'{command!r} runs {program!r}; use .venv/bin/python (a bare '
            f'python has none of the packages on a fresh machine)')


def _tmp_in(text, tmp):
    return TMP_PATH.sub(str(tmp), text)


def _normalised_lines(text, tmp=None):
    if tmp is not None:
        text = text.replace(str(tmp), '/tmp')
    lines = [line.expandtabs(8).rstrip() for line in text.split('\n')]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def assert_output(expected, actual, tmp=None):
    """`actual` (a command's or block's output) against an output block."""
    want = _normalised_lines(expected)
    got = _normalised_lines(actual, tmp)
    if '...' not in want:
        assert got == want
        return
    pattern = ''
    for line in want:
        if line == '...':
            pattern += r'(?:[^\n]*\n)*?'
        elif line.endswith(' ...'):
            pattern += re.escape(line[:-4]) + r'[^\n]*\n'
        else:
            pattern += re.escape(line) + r'\n'
    assert re.fullmatch(pattern, '\n'.join(got) + '\n'), (
        'the excerpt\n' + '\n'.join(want) + '\nis not in\n' + '\n'.join(got))


# --------------------------------------------------------------- the runs


@dataclasses.dataclass
class Run:
    output: str = ''
    namespace: dict = None
    error: BaseException = None
    returncodes: list = None
    cwd: pathlib.Path = None


class _Printed(logging.Handler):
    """Writes absl's warnings where the block's prints go."""

    def __init__(self, stream):
        super().__init__(logging.WARNING)
        self.stream = stream

    def emit(self, record):
        self.stream.write(
            f'{record.levelname}:{record.name}:{record.getMessage()}\n')


@contextlib.contextmanager
def _fresh_pruning_hparams_flag():
    """Lets a block define and parse the global `--pruning_hparams` flag."""
    from absl import flags
    values = flags.FLAGS
    was_parsed = values.is_parsed()
    old = values['pruning_hparams'] if 'pruning_hparams' in values else None
    if old is not None:
        delattr(values, 'pruning_hparams')
    try:
        yield
    finally:
        if 'pruning_hparams' in values:
            delattr(values, 'pruning_hparams')
        if old is not None:
            values['pruning_hparams'] = old
        if not was_parsed:
            values.unparse_flags()


BLOCK_CONTEXT = {'contrib_flags': _fresh_pruning_hparams_flag}


def run_python(block, tmp):
    import keras
    keras.backend.clear_session()
    cwd = tmp / 'blocks' / block.name
    (cwd / 'tests').mkdir(parents=True)
    (cwd / 'tests' / 'data').symlink_to(ROOT / 'tests' / 'data')
    printed = io.StringIO()
    handler = _Printed(printed)
    absl_logger = logging.getLogger('absl')
    namespace = {'__name__': f'docs_{block.name}'}
    run = Run(namespace=namespace, cwd=cwd)
    context = BLOCK_CONTEXT.get(block.name, contextlib.nullcontext)
    here = os.getcwd()
    absl_logger.addHandler(handler)
    try:
        os.chdir(cwd)
        with context(), contextlib.redirect_stdout(printed):
            source = _tmp_in(block.text, tmp)
            filename = f'{block.doc}:{block.name}'
            # Where inspect (and so autograph) finds the source, as of a file.
            linecache.cache[filename] = (len(source), None,
                                         source.splitlines(True), filename)
            code = compile(source, filename, 'exec')
            exec(code, namespace)  # noqa: S102
    except Exception as error:  # pylint: disable=broad-except
        run.error = error
    finally:
        os.chdir(here)
        absl_logger.removeHandler(handler)
    run.output = printed.getvalue()
    return run


def run_shell(block, tmp):
    run = Run(returncodes=[])
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # as a user runs them: tf_prune from .venv
    for command in commands(block.text):
        result = subprocess.run(_tmp_in(command, tmp), shell=True, cwd=ROOT,
                                env=env, capture_output=True, text=True,
                                timeout=600)
        stderr = [line for line in result.stderr.split('\n')
                  if not line.startswith(TF_STARTUP)]
        run.output += result.stdout + '\n'.join(stderr)
        run.returncodes.append(result.returncode)
        if result.returncode:
            break
    return run


@pytest.fixture(scope='session')
def doc_runs(tmp_path_factory):
    """Every Python and `RUN` block, in the docs' order.

    Python blocks run here, one after another; shell blocks run beside them
    in two threads, each started once every block before it in the docs has
    run or started (they read what earlier Python blocks wrote).
    """
    tmp = tmp_path_factory.mktemp('docs')
    runs, pending = {}, {}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for block in BLOCKS:
            if block.language == 'python':
                runs[block.name] = run_python(block, tmp)
            elif block.name in RUN:
                pending[block.name] = pool.submit(run_shell, block, tmp)
        for name, future in pending.items():
            runs[name] = future.result()
    return tmp, runs


# ------------------------------------------------- Python blocks' checks


def _zero_fraction(array):
    return float(np.mean(np.asarray(array) == 0))


def _check_readme_quickstart(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    assert find_wrappers(ns['model']) and not find_wrappers(ns['plain'])
    kernel = ns['plain'].get_layer('dense').kernel.numpy()
    assert _zero_fraction(kernel) == pytest.approx(0.9, abs=1e-3)
    assert (cwd / 'pruned.tflite').stat().st_size > 0
    assert any((cwd / 'logs').rglob('events.out.tfevents.*'))


def _check_quickstart_fit(ns, cwd):
    from tf_prune.keras.wrapper import PruneWrapper
    # The schedule reaches 0.9 at step 60, the last step of the fit.
    dense_mask = ns['masks']['dense/mask']
    assert 1.0 - dense_mask.mean() == pytest.approx(0.9, abs=1e-6)
    restored = ns['restored'].get_layer('dense')
    assert isinstance(restored, PruneWrapper)
    np.testing.assert_array_equal(restored.pruned_weights[0].mask.numpy(),
                                  dense_mask)


def _check_quickstart_custom_loop(ns, cwd):
    assert ns['targets'] == [0.5]
    assert ns['reached'] == [0.5]
    assert any((cwd / 'logs').rglob('events.out.tfevents.*'))


def _check_quickstart_training_dir(ns, cwd):
    import tf_prune
    assert ns['step'] == 40
    assert tf_prune.checkpoints.latest_step(cwd / 'train') == 40
    assert sorted(p.name for p in (cwd / 'train').glob('ckpt-*.index')) == [
        'ckpt-10.index', 'ckpt-20.index', 'ckpt-30.index', 'ckpt-40.index']
    mask = ns['model'].get_layer('fc').pruned_weights[0].mask.numpy()
    assert _zero_fraction(mask) == pytest.approx(0.8)
    rebuilt = ns['rebuilt'].get_layer('fc').pruned_weights[0].mask.numpy()
    np.testing.assert_array_equal(rebuilt, mask)


def _check_hparams_parse(ns, cwd):
    assert ns['target'] == 0.9
    assert ns['weight_map'] == ['conv1:0.9', 'conv2/kernel:0.8']
    assert ns['same'] is True


def _check_hparams_update_mask(ns, cwd):
    assert ns['due'] is True
    assert float(ns['sparsity']) == pytest.approx(0.8)
    assert _zero_fraction(ns['pruned_kernel']) == pytest.approx(0.8, abs=1e-3)


def _check_contrib_flags(ns, cwd):
    hparams = ns['hparams']
    assert hparams.name == 'cifar10_pruning'
    assert hparams.begin_pruning_step == 10000
    assert hparams.target_sparsity == 0.9


def _check_contrib_strip_python(ns, cwd):
    import tensorflow as tf
    contrib = tf.compat.v1.GraphDef()
    contrib.ParseFromString(
        (ROOT / 'tests/data/contrib_r115/conv/contrib_stripped.pb').read_bytes())
    assert ns['constants'] == sorted(n.name for n in contrib.node
                                     if n.op == 'Const')
    assert 'conv1/weights/masked_weight' in ns['constants']
    names = {n.name for n in ns['stripped'].node}
    assert not [n for n in names if n.endswith(('/mask', '/threshold'))]


def _check_tfmot_polynomial_decay(ns, cwd):
    assert ns['schedule'] == pytest.approx([0.0, 0.65625, 0.75])
    for layer in ('fc1', 'fc2'):
        kernel = ns['stripped'].get_layer(layer).kernel.numpy()
        assert _zero_fraction(kernel) == pytest.approx(0.75)


def _check_tfmot_api_one_line(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    from tf_prune.tfmot.wrapper import facade_wrappers
    assert len(facade_wrappers(ns['pruned'])) == 3
    assert not find_wrappers(ns['stripped'])
    assert _zero_fraction(ns['kernel']) == pytest.approx(0.75)
    assert any((cwd / 'logs' / 'metrics').glob('events.out.tfevents.*'))


def _check_tfmot_api_keras_file(ns, cwd):
    from tf_prune.tfmot.wrapper import PruneLowMagnitude
    [saved], [restored] = (m.layers for m in (ns['model'], ns['restored']))
    assert isinstance(restored, PruneLowMagnitude)
    assert restored.sparsity_m_by_n == (2, 4)
    np.testing.assert_array_equal(restored.pruned_weights[0].mask.numpy(),
                                  saved.pruned_weights[0].mask.numpy())


def _check_tfmot_api_subclassed(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    assert not find_wrappers(ns['net'])


def _check_tfmot_api_export(ns, cwd):
    import keras
    tmp = cwd.parent.parent
    assert (tmp / 'two_four.tflite').stat().st_size > 0
    plain = keras.models.load_model(tmp / 'two_four_plain.keras')
    assert [type(layer) for layer in plain.layers] == [keras.layers.Dense] * 2
    kernel = plain.get_layer('fc').kernel.numpy()  # (16, 8): [in, out]
    assert ((kernel.reshape(4, 4, 8) != 0).sum(axis=1) == 2).all()


def _check_export_writers(ns, cwd):
    import keras
    tmp = cwd.parent.parent
    for name in ('pruned.keras', 'pruned.pb', 'pruned.tflite',
                 'pruned_float16.tflite', 'plain.keras'):
        assert (tmp / name).stat().st_size > 0, name
    assert (tmp / 'pruned_saved_model' / 'saved_model.pb').exists()
    plain = ns['plain']
    assert [type(layer) for layer in plain.layers] == [
        keras.layers.Conv2D, keras.layers.Flatten, keras.layers.Dense]
    assert _zero_fraction(plain.get_layer('conv1').kernel.numpy()) == (
        pytest.approx(58 / 72))
    inputs = np.random.rand(4, 28, 28, 1).astype('float32')
    np.testing.assert_allclose(plain(inputs), ns['model'](inputs), atol=1e-5)
    import tensorflow as tf
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((tmp / 'pruned.pb').read_bytes())
    nodes = {n.name: n.op for n in graph_def.node}
    for name in ('sequential/conv1/bias', 'sequential/conv1/kernel/masked_weight',
                 'sequential/probabilities/kernel/masked_weight'):
        assert nodes[name] == 'Const', name
    assert nodes['images'] == 'Placeholder' and 'probabilities' in nodes
    assert not [n for n in nodes if n.endswith(('/mask', '/threshold'))]


def _check_export_channels(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    assert (cwd.parent.parent / 'channels.keras').stat().st_size > 0
    shrunk = ns['shrunk']
    assert not find_wrappers(shrunk)
    assert (shrunk.get_layer('conv1').filters,
            shrunk.get_layer('conv2').filters) == (8, 16)


def _check_structured_fit(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    shrunk = ns['shrunk']
    assert not find_wrappers(shrunk)
    # Half of the residual stream's 16 channels and of widen's 32.
    assert (shrunk.get_layer('stem').filters,
            shrunk.get_layer('block2_conv').filters,
            shrunk.get_layer('widen').filters) == (8, 8, 16)
    assert (cwd / 'logs').is_dir()


def _check_structured_one_shot(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    assert not find_wrappers(ns['shrunk'])
    assert ns['shrunk'].count_params() < ns['model'].count_params() / 3


def _check_sensitivity_python(ns, cwd):
    import tf_prune
    result, suggestion, uniform = ns['result'], ns['suggestion'], ns['uniform']
    assert [u.name for u in result.units] == [
        'conv/kernel', 'fc/kernel', 'probabilities/kernel']
    assert len(result.rows) == 3 * 3
    assert any(suggestion.sparsities.values())
    assert suggestion.drop <= 0.02
    tf_prune.get_pruning_hparams().parse(suggestion.spec)
    assert abs(uniform.parameters - ns['left']) <= 1
    # What the guide shows: at equal parameters, the map beats uniform.
    assert suggestion.metric > ns['uniform_accuracy']
    tmp = cwd.parent.parent
    assert (tmp / 'tiny.keras').exists() and (tmp / 'tiny_test.npz').exists()


def _check_troubleshooting_save(ns, cwd):
    tmp = cwd.parent.parent
    assert (tmp / 'pruned_model.keras').exists()
    assert (tmp / 'plain_model.keras').exists()


def _check_troubleshooting_subclassed(ns, cwd):
    assert not (cwd / 'net.tflite').exists()


def _check_troubleshooting_subclassed_fix(ns, cwd):
    from tf_prune.keras.wrapper import find_wrappers
    assert not find_wrappers(ns['net'])
    assert (cwd / 'net.tflite').stat().st_size > 0


def _check_troubleshooting_unknown_layer(ns, cwd):
    assert ns['names'] == ['scale/kernel', 'fc/kernel']


def _check_output_only(ns, cwd):
    """The block's output block says what it does."""


PYTHON_CHECKS = {
    'readme_quickstart': _check_readme_quickstart,
    'quickstart_fit': _check_quickstart_fit,
    'quickstart_custom_loop': _check_quickstart_custom_loop,
    'quickstart_training_dir': _check_quickstart_training_dir,
    'hparams_parse': _check_hparams_parse,
    'hparams_update_mask': _check_hparams_update_mask,
    'contrib_flags': _check_contrib_flags,
    'contrib_strip_python': _check_contrib_strip_python,
    'compat_v1_graph': _check_output_only,
    'tfmot_polynomial_decay': _check_tfmot_polynomial_decay,
    'tfmot_api_one_line': _check_tfmot_api_one_line,
    'tfmot_api_keras_file': _check_tfmot_api_keras_file,
    'tfmot_api_subclassed': _check_tfmot_api_subclassed,
    'tfmot_api_export': _check_tfmot_api_export,
    'export_writers': _check_export_writers,
    'export_channels': _check_export_channels,
    'structured_fit': _check_structured_fit,
    'structured_one_shot': _check_structured_one_shot,
    'sensitivity_python': _check_sensitivity_python,
    'troubleshooting_save': _check_troubleshooting_save,
    'troubleshooting_uncontrolled': _check_output_only,
    'troubleshooting_training_dir': _check_output_only,
    'troubleshooting_subclassed': _check_troubleshooting_subclassed,
    'troubleshooting_subclassed_fix': _check_troubleshooting_subclassed_fix,
    'troubleshooting_unknown_layer': _check_troubleshooting_unknown_layer,
}

# Shell blocks run by this test, and the exit status of their last command.
RUN = {
    'readme_strip_contrib': 0,
    'hparams_schedule': 0,
    'contrib_strip': 0,
    'contrib_inspect': 0,
    'export_strip_tool': 0,
    'tfmot_api_inspect': 0,
    'export_inspect_keras': 0,
    'export_shrink_tool': 0,
    'sensitivity_tool': 0,
    'troubleshooting_load_without_import': 1,
    'troubleshooting_load_with_import': 0,
    'troubleshooting_load_plain': 0,
    'troubleshooting_bad_spec': 2,
    'troubleshooting_no_data': 2,
}


# ------------------------------------------- checked, not run: the sources


def makefile():
    """`(variables, recipes)` of the Makefile, recipes as joined commands."""
    variables, recipes, target = {'CURDIR': '$PWD'}, {}, None
    text = re.sub(r'\\\n\s*', ' ', (ROOT / 'Makefile').read_text())
    for line in text.split('\n'):
        assignment = re.match(r'^(\w+)\s*(?::=|\?=|=)\s*(.*)$', line)
        rule = re.match(r'^([\w.-]+):', line)
        if assignment and not line.startswith('\t'):
            variables[assignment.group(1)] = assignment.group(2).strip()
            target = None
        elif rule and not line.startswith('\t'):
            target = rule.group(1)
            recipes[target] = []
        elif line.startswith('\t') and target:
            recipes[target].append(line.strip().lstrip('@'))
        elif not line.strip() or line.startswith('#'):
            continue
        else:
            target = None
    return variables, recipes


def expand(text, variables):
    for _ in range(10):
        text = re.sub(r'\$\((\w+)\)',
                      lambda m: variables.get(m.group(1), m.group(0)), text)
    return text.replace('$$', '$')


def _same_commands(documented, run_elsewhere):
    assert [_words(c) for c in documented] == [_words(c) for c in run_elsewhere]


def _check_readme_make(block):
    _, recipes = makefile()
    assert commands(block.text) == ['make test', 'make demo']
    assert {'test', 'demo'} <= set(recipes)
    variables, _ = makefile()
    assert expand(recipes['test'][-1], variables) == (
        '.venv/bin/python -m pytest -q -n 2 --dist loadfile')


def _demo_commands():
    variables, recipes = makefile()
    return [expand(c, variables) for c in recipes['demo']
            if c.startswith('$(PY)')]


def _check_quickstart_demo(block):
    _same_commands(commands(block.text), _demo_commands())


def _check_quickstart_tensorboard(block):
    variables, recipes = makefile()
    hints = [expand(c, variables) for c in recipes['demo']
             if 'bin/tensorboard' in c]
    assert len(hints) == 1
    hint = re.fullmatch(r'echo "\s*(.*)"', hints[0]).group(1)
    assert commands(block.text) == [hint]


def example_flags(script):
    """`{flag: default}` of an example, read from its source."""
    tree = ast.parse((ROOT / script).read_text())
    defaults = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith('DEFINE_')):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        if node.func.attr == 'DEFINE_pruning_hparams':
            name, default = 'pruning_hparams', keywords.get('default')
        else:
            name = ast.literal_eval(node.args[0])
            default = node.args[1] if len(node.args) > 1 else keywords['default']
        try:
            defaults[name] = ast.literal_eval(default) if default else ''
        except ValueError:
            defaults[name] = None  # computed, e.g. the data directory
    return defaults


def _check_example_flags(block):
    """Each flag given is the example's default; `--train_dir` names where
    the run goes and may be any directory."""
    [command] = commands(block.text)
    words = _words(command)
    assert words[0] == '.venv/bin/python'
    defaults = example_flags(words[1])
    for word in words[2:]:
        name, value = re.fullmatch(r'--(\w+)=(.*)', word).groups()
        assert name in defaults, f'{words[1]} has no flag --{name}'
        if name != 'train_dir':
            assert value == str(defaults[name]), (name, value, defaults[name])


def _check_export_bazel(block):
    variables, recipes = makefile()
    in_make = [expand(c, variables) for c in recipes['bazel-tool']
               if c.startswith('$(WITH_VENV)')]
    documented = commands(block.text)
    _same_commands(documented[:2], in_make)
    assert documented[2:] == [f'{VENV_PATH} bazel test //tests:fast']
    build = (ROOT / 'tests' / 'BUILD').read_text()
    assert re.search(r'py_test\(\s*name = "fast"', build)
    bazelrc = (ROOT / '.bazelrc').read_text().split('\n')
    assert 'build --compilation_mode=opt' in bazelrc


def _check_compat_v1_example(block):
    """The example's flags are its defaults; the strip reads its
    --train_dir and the example's output node."""
    train, strip = commands(block.text)
    _check_example_flags(dataclasses.replace(block, text=train))
    words = _words(strip)
    train_dir = re.search(r'--train_dir=(\S+)', train).group(1)
    assert words[:2] == ['.venv/bin/python', 'tools/strip_pruning_vars.py']
    assert f'--checkpoint_dir={train_dir}' in words
    assert '--output_node_names=probabilities' in words
    source = (ROOT / 'examples/cifar10_style_v1.py').read_text()
    assert "name='probabilities'" in source


# Too slow for this suite, with what they are checked against instead.
CHECKED = {
    # the whole suite and the demo: their recipes in the Makefile
    'readme_make': _check_readme_make,
    # trains two CNNs for 6 epochs each: the Makefile's demo recipe
    'quickstart_demo': _check_quickstart_demo,
    # a server that runs until stopped: the demo's printed hint
    'quickstart_tensorboard': _check_quickstart_tensorboard,
    # training runs of minutes: the examples' flag defaults
    'quickstart_example_custom_loop': _check_example_flags,
    'quickstart_example_lstm': _check_example_flags,
    # times a 16M-element sort: its (absent) flags are its defaults
    'quickstart_example_mask_engine': _check_example_flags,
    'compat_v1_example': _check_compat_v1_example,
    # tfmot's MNIST CNN, 12 epochs of three models: its flag defaults
    'tfmot_api_example_cnn': _check_example_flags,
    # Bazel builds: the Makefile's bazel-tool recipe and tests/BUILD
    'export_bazel': _check_export_bazel,
}


def _check_demo_output(block):
    """The demo's sparsity table, when `make demo` has left its file."""
    stripped = ROOT / 'build/demo/stripped/pruning_stripped.tflite'
    text = block.text
    assert 'Wrote build/demo/stripped/pruning_stripped.tflite\n' in text
    if not stripped.exists():
        pytest.skip('no build/demo: run make demo')
    table = subprocess.run(
        ['.venv/bin/python', 'tools/inspect_sparsity.py', str(stripped)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    assert table.stdout in text


def _check_custom_loop_output(block):
    """Each weight's target is its spec's at the last step."""
    import tf_prune
    defaults = example_flags('examples/custom_training_loop.py')
    hparams = tf_prune.get_pruning_hparams().parse(defaults['pruning_hparams'])
    rows = re.findall(r'^  (\S+/kernel)\s+sparsity ([\d.]+) \(target ([\d.]+)\)',
                      block.text, re.MULTILINE)
    assert len(rows) == 5
    for weight, sparsity, target in rows:
        expected = float(tf_prune.weight_sparsity(
            hparams, weight, defaults['max_steps']))
        assert float(target) == pytest.approx(expected, abs=1e-4)
        assert float(sparsity) == pytest.approx(expected, abs=1e-3)


def _check_lstm_output(block):
    """Every block of the LSTM's kernels is all zeros or all kept."""
    rows = re.findall(r'^(lstm/\S+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)$', block.text,
                      re.MULTILINE)
    assert {r[0] for r in rows} == {'lstm/kernel', 'lstm/recurrent_kernel'}
    for _, _, sparsity, uniform in rows:
        assert float(sparsity) == pytest.approx(0.75, abs=0.01)
        assert float(uniform) == 1.0


CHECKED_OUTPUTS = {
    'quickstart_demo.output': _check_demo_output,
    'quickstart_example_custom_loop.output': _check_custom_loop_output,
    'quickstart_example_lstm.output': _check_lstm_output,
}


# ------------------------------------------------------------------ tests


def test_blocks_are_named_once():
    assert not PROBLEMS, '\n'.join(PROBLEMS)
    names = [b.name for b in BLOCKS]
    repeated = sorted({n for n in names if names.count(n) > 1})
    assert not repeated, f'block names used twice: {repeated}'
    for block in BLOCKS:
        assert block.language in LANGUAGES, (block.name, block.language)
        assert re.fullmatch(r'[a-z0-9_]+(\.output)?', block.name), block.name


def test_every_block_is_run_or_checked():
    assert 'quickstart_fit' in BY_NAME and 'readme_quickstart' in BY_NAME
    for index, block in enumerate(BLOCKS):
        if block.language == 'python':
            assert block.name in PYTHON_CHECKS, f'{block.name}: no assertions'
        elif block.language == 'sh':
            assert block.name in RUN or block.name in CHECKED, (
                f'{block.name}: neither run nor checked')
        else:
            assert block.name.endswith('.output'), (
                f'{block.name}: a text block is the output of the block '
                f'before it, named <that block>.output')
            before = BLOCKS[index - 1]
            assert block.name == before.name + '.output', (
                f'{block.name} does not follow its block')
            if before.name in CHECKED:
                assert block.name in CHECKED_OUTPUTS, block.name
    documented = set(BY_NAME)
    for table in (PYTHON_CHECKS, RUN, CHECKED, CHECKED_OUTPUTS):
        assert set(table) <= documented, set(table) - documented


def test_commands_run_the_projects_environment():
    problems = [f'{block.doc} {block.name}: {problem}'
                for block in BLOCKS if block.language == 'sh'
                for problem in map(_command_problem, commands(block.text))
                if problem]
    assert not problems, '\n'.join(problems)
    # The check itself: a bare python and a Bazel without the venv fail.
    assert _command_problem('python tools/inspect_sparsity.py x.pb')
    assert _command_problem('python3 tools/inspect_sparsity.py x.pb')
    assert _command_problem('bazel build //tools:strip_pruning_vars')


@pytest.mark.parametrize('name', _blocks('python'))
def test_python_block(name, doc_runs):
    tmp, runs = doc_runs
    run = runs[name]
    if run.error is not None:
        raise run.error
    PYTHON_CHECKS[name](run.namespace, run.cwd)
    output = _output_of(name)
    if output is not None:
        assert_output(output.text, run.output, tmp)


@pytest.mark.parametrize('name', sorted(RUN))
def test_shell_block(name, doc_runs):
    tmp, runs = doc_runs
    run = runs[name]
    expected = RUN[name]
    assert run.returncodes[-1] == expected, run.output[-3000:]
    assert len(run.returncodes) == len(commands(BY_NAME[name].text))
    output = _output_of(name)
    if output is not None:
        assert_output(output.text, run.output, tmp)
    else:
        assert not run.output.strip(), run.output[-3000:]


@pytest.mark.parametrize('name', sorted(CHECKED))
def test_checked_block(name):
    CHECKED[name](BY_NAME[name])


@pytest.mark.parametrize('name', sorted(CHECKED_OUTPUTS))
def test_checked_output(name):
    CHECKED_OUTPUTS[name](BY_NAME[name])


def test_excerpts_match_as_documented():
    assert_output('a\n...\nc ...\n', 'a\nb\nb\nc d\n')
    assert_output('...\nc\n', 'a\nc\n')
    with pytest.raises(AssertionError):
        assert_output('a\n...\nc\n', 'a\nb\nc\nd\n')
    with pytest.raises(AssertionError):
        assert_output('a\nc\n', 'a\nb\nc\n')


def test_readme_is_short_and_code_comes_first():
    lines = (ROOT / 'README.md').read_text().split('\n')
    assert 100 <= len(lines) <= 180, len(lines)
    first_code = min(BY_NAME[n].line for n in ('readme_make',
                                               'readme_quickstart'))
    first_output = min(b.line for b in BLOCKS
                       if b.doc == 'README.md' and b.language == 'text')
    assert first_code < first_output


def test_readme_figures_are_the_benchmarks_results():
    readme = (ROOT / 'README.md').read_text()
    results = ROOT / 'benchmarks' / 'results'
    runs = [json.loads((results / name).read_text())['rows'] for name in (
        'fashion_mnist_vs_tfmot.json', 'fashion_mnist_vs_tfmot_target_0.9.json')]

    def row(rows, library):
        [found] = [r for r in rows if r['library'] == library
                   and r['target_sparsity'] in (0.0, 0.9)]
        return found

    main = runs[0]
    for library in ('dense', 'tf_prune', 'tfmot'):
        assert f"{row(main, library)['test_accuracy'] * 100:.2f}%" in readme
    tf_prune_row = row(main, 'tf_prune')
    dense_row = row(main, 'dense')
    assert f"{tf_prune_row['sparse_tflite_bytes']:,} bytes" in readme
    assert f"{dense_row['tflite_bytes']:,}" in readme
    ratio = tf_prune_row['sparse_tflite_bytes'] / dense_row['tflite_bytes']
    assert f'{ratio:.3f}x' in readme
    for library in ('tf_prune', 'tfmot'):
        ratios = sorted(row(rows, library)['step_ratio'] for rows in runs)
        assert f'{ratios[0]:.3f}x to {ratios[1]:.3f}x' in readme, library
    sensitivity = json.loads((results / 'sensitivity.json').read_text())
    words = ' '.join(readme.split())  # the README's lines wrap anywhere
    for part in sensitivity['parts']:
        dense, suggested, uniform = part['rows']
        assert f"{suggested['parameters'] / dense['parameters']:.3f} of" in words
        for figure in (dense['one_shot_test_accuracy'],
                       suggested['one_shot_test_accuracy'],
                       uniform['one_shot_test_accuracy'],
                       suggested['fine_tuned_test_accuracy'],
                       uniform['fine_tuned_test_accuracy']):
            assert f'{figure * 100:.2f}%' in readme, part['part']


def _anchor(heading):
    anchor = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return anchor.replace(' ', '-')


def test_links_between_guides_resolve():
    problems = []
    for path in DOCS:
        if path.name == 'benchmarks.md':  # generated by benchmarks/render_docs.py
            continue
        text = path.read_text()
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'https?://', target):
                continue
            file, _, fragment = target.partition('#')
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                problems.append(f'{path.name}: {target}: no such file')
                continue
            if fragment and linked.suffix == '.md':
                anchors = {_anchor(h) for h in re.findall(
                    r'^#+ (.*)$', linked.read_text(), re.MULTILINE)}
                if fragment not in anchors:
                    problems.append(f'{path.name}: {target}: no such heading')
    assert not problems, '\n'.join(problems)


def test_hparams_tables_are_the_defaults():
    import tf_prune
    text = (ROOT / 'docs' / 'hparams.md').read_text()
    rows = re.findall(r'^\| (\w+) \| (str|int|float|bool|list) \| ([^|]*) \|',
                      text, re.MULTILINE)
    defaults = tf_prune.get_pruning_hparams().values()
    assert [r[0] for r in rows] == list(defaults)
    for name, kind, default in rows:
        value = defaults[name]
        assert type(value).__name__ == kind, name
        written = default.strip()
        if isinstance(value, list):
            assert written == str(value), name
        else:
            assert written == str(value), name

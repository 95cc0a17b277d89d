"""Runs many command lines of one tool or example in one process.

A fresh Python process that imports TensorFlow costs about 4.5 s of CPU, so
running each row of a test table as its own process would make the suite's
bulk. `run_rows` starts one driver process (this module, run as
`python -m tests.helpers.tool_driver <script> <plan.json> <results.json>`)
that loads the script as a user runs it (its flags defined at import, absl's
`app.run` set up). For each row it parses the row's flags afresh and calls
the script's `main(argv)` as `app.run` does, capturing what it wrote on file
descriptors 1 and 2 (TensorFlow's C++ output included) and its exit status:
`SystemExit`'s code, `main`'s return value (None as 0), or 1 with the
traceback on stderr when it raises, as for a user.

The environment does not set TF_CPP_MIN_LOG_LEVEL, as a user's does not.
"""

import functools
import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import traceback

from tests.conftest import ROOT, project_env


def run_rows(script, rows, work_dir, timeout=600):
    """Runs `script` once per row, all in one driver process.

    Args:
      script: the path of a script with absl flags and `main(argv)`.
      rows: `(name, args)` pairs, or dicts with `name`, `args` and
        optionally `file_size_limit` (bytes a row may write, as on a full
        disk).
      work_dir: where the plan and the results are written (one pair per
        script name).
      timeout: seconds for the whole driver process.

    Returns:
      `{name: {'name', 'returncode', 'stdout', 'stderr'}}`.
    """
    plan = []
    for row in rows:
        if not isinstance(row, dict):
            name, args = row
            row = {'name': name, 'args': args}
        plan.append({'name': row['name'],
                     'args': [str(arg) for arg in row['args']],
                     'file_size_limit': row.get('file_size_limit')})
    stem = os.path.splitext(os.path.basename(str(script)))[0]
    plan_path = os.path.join(work_dir, f'plan_{stem}.json')
    results_path = os.path.join(work_dir, f'results_{stem}.json')
    with open(plan_path, 'w') as file:
        json.dump(plan, file)
    env = project_env()
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the tests' own, not a user's
    driver = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.tool_driver', str(script),
         plan_path, results_path],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert driver.returncode == 0, driver.stderr[-3000:]
    with open(results_path) as file:
        results = json.load(file)
    # Deleted objects' warnings (a checkpoint's unrestored values, say)
    # print when they are collected: at the latest, as the process ends.
    assert results['at_exit'] == '', results['at_exit']
    return {row['name']: row for row in results['rows']}


def refusal_line(result):
    """The one line on stderr of a row refused on bad input (exit 2, nothing
    on stdout), as every tool and example refuses."""
    assert result['returncode'] == 2, result['stderr'][-3000:]
    assert result['stdout'] == ''
    (line,) = result['stderr'].splitlines()
    return line


def _load_script(path):
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:  # as `python <script>` puts it first
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location('script_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines its flags; sets TF's log level
    return module


def _run_captured(function):
    """`function()`'s exit status and what it wrote on file descriptors 1
    and 2, TensorFlow's C++ logs included."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            returncode = function() or 0
        except SystemExit as error:
            returncode = 0 if error.code is None else error.code
        except Exception:  # pylint: disable=broad-except
            traceback.print_exc()  # what a user would see; status 1
            returncode = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        outputs = []
        for file in (out, err):
            file.seek(0)
            outputs.append(file.read().decode(errors='replace'))
    return returncode, outputs


def _with_file_size_limit(limit, function):
    """`function` run with writes beyond `limit` bytes failing (EFBIG:
    Python ignores SIGXFSZ), as on a full disk."""
    if limit is None:
        return function

    def limited():
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            return function()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    return limited


def _main(script, argv):
    """What `app.run(script.main)` does with `argv`: flags parsed (a bad
    one printed and exit 1), `main` called, a UsageError printed."""
    from absl import app  # pylint: disable=import-outside-toplevel
    argv = app.parse_flags_with_usage(argv)
    try:
        return script.main(argv)
    except app.UsageError as error:
        app.usage(shorthelp=True, detailed_error=error,
                  exitcode=error.exitcode)


def _drive(script_path, plan_path, results_path):
    # Scripts may read sys.argv at import (the tools, for --verbose).
    sys.argv = [script_path]
    script = _load_script(script_path)
    from absl import app, flags  # pylint: disable=import-outside-toplevel

    def run_plan(argv):
        del argv
        with open(plan_path) as file:
            plan = json.load(file)
        results = []
        for row in plan:
            flags.FLAGS.unparse_flags()
            returncode, (stdout, stderr) = _run_captured(
                _with_file_size_limit(row['file_size_limit'], functools.partial(
                    _main, script, [script_path, *row['args']])))
            results.append({'name': row['name'], 'returncode': returncode,
                            'stdout': stdout, 'stderr': stderr})
        _, at_exit = _run_captured(gc.collect)
        with open(results_path, 'w') as file:
            json.dump({'rows': results, 'at_exit': ''.join(at_exit)}, file)

    # As the script runs: absl's logging set up by app.run.
    app.run(run_plan, argv=[script_path])


if __name__ == '__main__':
    _drive(*sys.argv[1:])

"""tools/pruning_schedule.py, run as users run it."""

import subprocess
import sys

from tests.conftest import ROOT, project_env

TOOL = ROOT / 'tools' / 'pruning_schedule.py'
# TensorFlow prints start-up lines of its own at import; they are not ours.
TF_BANNER = ('WARNING: All log messages before absl::InitializeLog()', 'I0000 ')


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True,
                          text=True, timeout=120, env=project_env())


def test_prints_the_schedule():
    result = _run('--pruning_hparams=target_sparsity=0.8,'
                  'weight_sparsity_map=[conv1:0.4]', '--steps=0,50,100',
                  '--weights=conv1/kernel,fc/kernel')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split('\t') == ['step', 'sparsity', 'conv1/kernel', 'fc/kernel']
    assert lines[-1].split('\t') == ['100', '0.800000', '0.400000', '0.800000']


def test_bad_spec_is_one_line_and_exit_2():
    result = _run('--pruning_hparams=target_sparsty=0.8')
    assert result.returncode == 2
    ours = [line for line in result.stderr.strip().splitlines()
            if not line.startswith(TF_BANNER)]
    assert ours == [
        "pruning_schedule: --pruning_hparams=target_sparsty=0.8: Unknown "
        "hyperparameter 'target_sparsty'; did you mean 'target_sparsity'?"]

"""The package as a whole: its public API and its import."""

import subprocess
import sys

import pytest

import tf_prune
from tests.conftest import ROOT, project_env


def test_public_api():
    assert sorted(tf_prune.__all__) == sorted([
        'ModelFileError', 'PruneWrapper', 'Pruning', 'PruningCallback',
        'PruningHParams', 'StripError', 'TrainingDirectory', 'block_dims',
        'checkpoints', 'compute_sparsity', 'export', 'flags',
        'get_pruning_hparams',
        'graph_def_from_checkpoint', 'mask_update_due', 'prune',
        'sparsity_report', 'strip_pruning', 'strip_pruning_vars_fn',
        'update_mask', 'weight_sparsity'])
    for name in tf_prune.__all__:
        assert getattr(tf_prune, name) is not None


def test_import_leaves_tensorflow_unconfigured():
    # Devices must still be configurable after `import tf_prune` (logical CPUs
    # for MirroredStrategy are set up this way).
    code = ('import tensorflow as tf, tf_prune\n'
            'cpu = tf.config.list_physical_devices("CPU")[0]\n'
            'tf.config.set_logical_device_configuration(\n'
            '    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n'
            'print(len(tf.config.list_logical_devices("CPU")))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=120, env=project_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == '2'


def test_readme_python_examples_run_as_written():
    readme = (ROOT / 'README.md').read_text()
    blocks = [block.split('```', 1)[0] for block in readme.split('```python\n')[1:]]
    namespaces = []
    for block in blocks:
        namespace = {}
        exec(compile(block, 'README.md', 'exec'), namespace)  # noqa: S102
        namespaces.append(namespace)
    fit_example, loop_example, one_weight = namespaces
    # The schedule reaches 0.9 at step 60, the last step of the fit.
    dense_mask = fit_example['masks']['dense/mask']
    assert 1.0 - dense_mask.mean() == pytest.approx(0.9, abs=1e-6)
    assert loop_example['fc_sparsity'] == 0.5
    # conv2/kernel at step 50000 of that spec is pruned to 0.8.
    assert abs(1.0 - one_weight['mask'].numpy().mean() - 0.8) < 1e-3

"""The package as a whole: its public API and its import."""

import subprocess
import sys

import tf_prune
from tests.conftest import project_env


def test_public_api():
    assert sorted(tf_prune.__all__) == sorted([
        'DirectoryInUseError', 'ModelFileError', 'PruneWrapper', 'Pruning', 'PruningCallback',
        'PruningHParams', 'StripError', 'TrainingDirectory', 'block_dims',
        'checkpoints', 'compute_sparsity', 'export', 'flags',
        'get_pruning_hparams',
        'graph_def_from_checkpoint', 'mask_update_due', 'prune', 'sensitivity', 'shrink',
        'sparsity_report', 'strip_pruning', 'strip_pruning_vars_fn',
        'structured', 'tfmot', 'update_mask', 'weight_sparsity'])
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


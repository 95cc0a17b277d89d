"""Pruning state in checkpoints, and training resumed in a new process."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.conftest import project_env


def _pruned_model():
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(6, name='fc1')(inputs)
    outputs = keras.layers.LSTM(3, name='lstm')(keras.layers.Reshape((2, 3))(hidden))
    return tf_prune.prune(keras.Model(inputs, outputs))


def test_tf_checkpoint_saves_and_restores_pruning_state(tmp_path):
    model = _pruned_model()
    pruning = tf_prune.Pruning('target_sparsity=0.6,threshold_decay=0.3', model)
    pruning.mask_update(70)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / 'ckpt'))
    # Checkpoint keys are object paths; '/' within a name is escaped '.S'.
    names = {name.split('/', 2)[2].rsplit('/.ATTRIBUTES', 1)[0].replace('.S', '/')
             for name, _ in tf.train.list_variables(path)
             if name.startswith('model/_operations/')}
    assert {'mask', 'threshold', 'kernel/mask', 'kernel/threshold',
            'recurrent_kernel/mask', 'recurrent_kernel/threshold',
            'last_mask_update_step'} <= {name.split('/', 1)[1] for name in names}

    restored = _pruned_model()
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    again = tf_prune.Pruning('target_sparsity=0.6,threshold_decay=0.3', restored)
    for a, b in zip(pruning.get_masks() + pruning.get_thresholds(),
                    again.get_masks() + again.get_thresholds()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(again.last_mask_update_step.numpy()) == 70
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), restored(x).numpy())


def _train(ckpt_dir, first_epoch, last_epoch, out):
    result = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.resume_training', str(ckpt_dir),
         str(first_epoch), str(last_epoch), str(out)],
        capture_output=True, text=True, timeout=300, env=project_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
def test_resumed_training_reproduces_an_uninterrupted_run_bit_for_bit(tmp_path):
    whole = _train(tmp_path / 'whole', 0, 4, tmp_path / 'whole.npz')
    _train(tmp_path / 'parts', 0, 2, tmp_path / 'first.npz')
    resumed = _train(tmp_path / 'parts', 2, 4, tmp_path / 'resumed.npz')
    assert int(resumed['optimizer_iterations']) == 12
    assert sorted(whole) == sorted(resumed)
    masks = [name for name in whole if name.endswith('/mask')]
    assert masks == ['conv1/mask', 'fc1/mask', 'fc2/mask']
    # Masks were updated after the restart (steps 8, 10 and 12).
    assert int(resumed['conv1/last_mask_update_step']) == 12
    for name in whole:
        np.testing.assert_array_equal(resumed[name], whole[name], err_msg=name)
    assert float(np.mean(whole['fc1/mask'])) < 0.25

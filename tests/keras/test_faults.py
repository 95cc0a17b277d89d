"""Faults: killed trainings and exports, two trainings in one directory.

A process SIGKILLed while it writes leaves its temporaries; the next run in
the same place removes them and gets what an uninterrupted run gets. A
training directory is one training's at a time. A resumed run's TensorBoard
curves continue from the restored step.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.conftest import ROOT, project_env
from tests.helpers.tensorboard_read import LogDir
from tf_prune import export
from tf_prune.core import atomic
from tf_prune.keras import summaries

SPEC = ('pruning_frequency=2,begin_pruning_step=2,'
        'sparsity_function_end_step=8,target_sparsity=0.75')
PREFIX = 'model_pruning_summaries'


def _popen(*args):
    return subprocess.Popen(
        [sys.executable, '-m', *args], env=project_env(), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, returncode=0):
    """The last stdout line of `process`, which must end with `returncode`."""
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == returncode, stderr[-3000:]
    return stdout.strip().splitlines()[-1] if stdout.strip() else ''


def _leftovers(directory):
    """What a training directory holds besides its config and checkpoints."""
    kept = re.compile(r'checkpoint|tf_prune_model\.json'
                      r'|ckpt-\d+\.(index|data-\d+-of-\d+)')
    return sorted(name for name in os.listdir(directory)
                  if not kept.fullmatch(name))


@pytest.mark.slow
def test_a_training_killed_while_checkpointing_reruns_to_the_same_masks(
        tmp_path):
    killed_dir, whole_dir = tmp_path / 'killed', tmp_path / 'whole'
    # 4 epochs of 3 steps, a checkpoint after each; killed in the third
    # checkpoint write (step 9), before TF merged its shards.
    killed = _popen('tests.helpers.train_dir_run', str(killed_dir), '4',
                    str(tmp_path / 'unused.npz'), '3')
    whole = _popen('tests.helpers.train_dir_run', str(whole_dir), '4',
                   str(tmp_path / 'whole.npz'))
    assert json.loads(_finish(killed, -signal.SIGKILL)) == {
        'killed': 'checkpoint_write'}
    assert tf_prune.checkpoints.latest_step(str(killed_dir)) == 6
    # TF's unmerged shards, and the lock of the killed process.
    assert _leftovers(killed_dir) == [atomic.LOCK_NAME, 'ckpt-9_temp']
    assert os.listdir(killed_dir / 'ckpt-9_temp')

    rerun = _popen('tests.helpers.train_dir_run', str(killed_dir), '4',
                   str(tmp_path / 'rerun.npz'))
    _finish(whole)
    _finish(rerun)
    assert _leftovers(killed_dir) == []
    assert sorted(os.listdir(killed_dir)) == sorted(os.listdir(whole_dir))
    whole, rerun = (dict(np.load(tmp_path / f'{name}.npz'))
                    for name in ('whole', 'rerun'))
    assert int(rerun['optimizer_iterations']) == 12
    masks = [name for name in whole if name.endswith('/mask')]
    assert masks == ['conv1/mask', 'fc1/mask', 'fc2/mask']
    assert sorted(rerun) == sorted(whole)
    for name in whole:
        np.testing.assert_array_equal(rerun[name], whole[name], err_msg=name)


def _pruned_dense():
    """killed_writer's model, pruned to 75%."""
    keras.utils.set_random_seed(3)
    model = tf_prune.prune(keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(4)]))
    tf_prune.Pruning('target_sparsity=0.75,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))
    return model


def test_an_export_killed_while_writing_is_redone_with_nothing_left(tmp_path):
    # Each in its own directory: a writer's watcher takes any `.model.tmp-`.
    killed = {'keras_file': (tmp_path / 'k' / 'model.keras', 'while_writing'),
              'saved_model': (tmp_path / 's' / 'model', 'before_rename')}
    for output, _ in killed.values():
        output.parent.mkdir()  # for the writer's watcher to list
    processes = {writer: _popen('tests.helpers.killed_writer', writer,
                                str(output), crash)
                 for writer, (output, crash) in killed.items()}
    for writer, process in processes.items():
        assert json.loads(_finish(process, -signal.SIGKILL)) == {
            'killed': killed[writer][1]}
    # The killed writers' temporaries; the SavedModel one was killed in its
    # directory swap, holding the swap's lock.
    (keras_temporary,) = os.listdir(tmp_path / 'k')
    assert keras_temporary.startswith('.model.tmp-')
    assert sorted(name.split('-')[0] for name in os.listdir(tmp_path / 's')
                  ) == ['.model.lock', '.model.tmp']

    model = _pruned_dense()
    x = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    expected = tf_prune.strip_pruning(model)(x).numpy()
    export.keras_file(model, tmp_path / 'k' / 'model.keras')
    export.saved_model(model, tmp_path / 's' / 'model')
    assert os.listdir(tmp_path / 'k') == ['model.keras']
    assert os.listdir(tmp_path / 's') == ['model']
    loaded = keras.models.load_model(tmp_path / 'k' / 'model.keras')
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    serve = tf.saved_model.load(str(tmp_path / 's' / 'model')).signatures[
        'serving_default']
    (outputs,) = serve(tf.constant(x)).values()
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=0, atol=1e-5)
    kernel = loaded.layers[0].kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(0.75, abs=0.01)


def _compiled_model():
    keras.utils.set_random_seed(0)
    model = tf_prune.prune(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(8, name='fc1'),
        keras.layers.Dense(2, name='fc2')]))
    model.compile('sgd', 'mse')
    return model


def _fit(model, epochs=1, **callback_args):
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 6)), rng.normal(size=(16, 2)),
              batch_size=4, epochs=epochs, verbose=0,
              callbacks=[tf_prune.PruningCallback(SPEC, **callback_args)])


def test_a_second_training_in_a_directory_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, str(ROOT / 'tests' / 'helpers' / 'atomic_process.py'),
         'hold', str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == 'held\n'
    with pytest.raises(tf_prune.DirectoryInUseError) as error:
        _fit(_compiled_model(), checkpoint_dir=str(tmp_path))
    assert str(error.value) == (
        f'training directory {tmp_path} is in use by another training '
        f'(pid {holder.pid}); wait for it to end, or use another directory')
    assert os.listdir(tmp_path) == [atomic.LOCK_NAME]
    holder.communicate('')  # ends it
    _fit(_compiled_model(), checkpoint_dir=str(tmp_path))
    assert tf_prune.checkpoints.latest_step(str(tmp_path)) == 4


def test_a_training_removes_unfinished_checkpoint_writes(tmp_path):
    (tmp_path / 'ckpt-9_temp').mkdir()
    (tmp_path / 'ckpt-9_temp' / 'part-00000-of-00001.index').write_bytes(b'')
    (tmp_path / f'checkpoint.tmp{"0" * 32}').write_bytes(b'')
    callback = tf_prune.TrainingDirectory(str(tmp_path), SPEC)
    model = _compiled_model()
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 6)), rng.normal(size=(16, 2)),
              batch_size=4, verbose=0, callbacks=[callback])
    # on_train_end released the lock: nothing but the checkpoints is left.
    assert _leftovers(tmp_path) == []
    assert (tmp_path / 'ckpt-4.index').exists()


def _next_event_file_second():
    """Waits for the next wall-clock second before a second writer.

    Event files are named `events.out.tfevents.<second>.<host>.<pid>.<n>.v2`
    and TensorBoard reads them in name order; two writers of one process in
    the same second are ordered by `n` as text, so the 10th writer sorts
    before the 9th. A restarted training is another process a while later.
    """
    time.sleep(1 - time.time() % 1 + 0.01)


def _steps(log_dir, tag):
    series = LogDir(log_dir).chart_series('.', f'^{tag}$')
    return [step for step, _ in series[tag]]


def test_a_resumed_fit_continues_its_curves_from_the_restored_step(tmp_path):
    _fit(_compiled_model(), epochs=2, log_dir=str(tmp_path),
         checkpoint_dir=str(tmp_path))
    _next_event_file_second()
    _fit(_compiled_model(), epochs=1, log_dir=str(tmp_path),
         checkpoint_dir=str(tmp_path))
    # Every second step: 2 to 8, then from the restored step 8 on.
    assert _steps(tmp_path, f'{PREFIX}/last_mask_update_step') == [
        2, 4, 6, 8, 10, 12]


def test_a_restart_marker_drops_what_a_killed_run_logged_past_its_checkpoint(
        tmp_path):
    pruning = tf_prune.Pruning(SPEC, _compiled_model())

    def run(steps):
        writer = tf.summary.create_file_writer(str(tmp_path))
        with writer.as_default():
            summaries.write_run_start(steps[0])
            for step in steps:
                pruning.add_pruning_summaries(step)
        writer.close()

    run(range(1, 11))  # killed after step 10; its last checkpoint: step 6
    _next_event_file_second()
    run(range(7, 13))  # resumed from step 6
    assert _steps(tmp_path, f'{PREFIX}/sparsity') == list(range(1, 13))


def test_a_fit_resumed_before_its_last_checkpoint_replaces_the_later_curves(
        tmp_path):
    _fit(_compiled_model(), epochs=2, log_dir=str(tmp_path),
         checkpoint_dir=str(tmp_path))
    # As if killed while writing the checkpoint of step 8: its summaries up
    # to step 8 are written, the checkpoint is not.
    for path in tmp_path.glob('ckpt-8.*'):
        path.unlink()
    _next_event_file_second()
    _fit(_compiled_model(), epochs=1, log_dir=str(tmp_path),
         checkpoint_dir=str(tmp_path))
    # Resumed from step 4, the run writes steps 6 and 8 again, once.
    assert _steps(tmp_path, f'{PREFIX}/last_mask_update_step') == [2, 4, 6, 8]

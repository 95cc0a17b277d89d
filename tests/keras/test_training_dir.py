"""Training directories: TrainingDirectory (or PruningCallback(checkpoint_dir=...)),
load_model, and the hparams a directory records."""

import json

import keras
import numpy as np
import pytest

import tf_prune
from tf_prune import checkpoints

HPARAMS = ('begin_pruning_step=2,end_pruning_step=20,pruning_frequency=2,'
           'target_sparsity=0.75,sparsity_function_end_step=12')


def _compiled_model():
    inputs = keras.Input((10,), name='features')
    hidden = keras.layers.Dense(16, activation='relu', name='fc1')(inputs)
    outputs = keras.layers.Dense(3, name='logits')(hidden)
    model = tf_prune.prune(keras.Model(inputs, outputs))
    model.compile(optimizer='adam', loss='mse')
    return model


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((64, 10)).astype(np.float32),
            rng.standard_normal((64, 3)).astype(np.float32))


def test_training_directory_rebuilds_the_model_and_resumes(tmp_path):
    x, y = _data()
    first = _compiled_model()
    first.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path))])
    assert int(first.optimizer.iterations) == 8

    description = json.loads((tmp_path / checkpoints.MODEL_CONFIG).read_text())
    assert description['format'] == 'tf_prune.keras_checkpoint'
    assert sorted(p.name for p in tmp_path.glob('ckpt-*.index')) == [
        'ckpt-4.index', 'ckpt-8.index']
    assert checkpoints.latest_step(str(tmp_path)) == 8
    assert checkpoints.latest_step(str(tmp_path / 'not_yet')) == 0

    loaded = checkpoints.load_model(str(tmp_path))
    np.testing.assert_array_equal(loaded(x).numpy(), first(x).numpy())
    masks = tf_prune.Pruning(HPARAMS, loaded).get_masks()
    for mask, expected in zip(masks, tf_prune.Pruning(HPARAMS, first).get_masks()):
        np.testing.assert_array_equal(mask.numpy(), expected.numpy())
    assert 0 < np.mean(masks[0].numpy() == 0) < 0.75

    # Training started again with the directory continues at step 8, and
    # its first logs (step 9, no update due) show the restored masks' zeros.
    restored_sparsity = float(np.mean(np.concatenate(
        [m.numpy().ravel() for m in masks]) == 0))
    second = _compiled_model()
    logged = []
    second.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path)),
        keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs:
                                       logged.append(float(logs['sparsity'])))])
    assert logged[0] == pytest.approx(restored_sparsity)
    assert int(second.optimizer.iterations) == 12
    assert int(tf_prune.Pruning(HPARAMS, second).last_mask_update_step) == 12
    mask = tf_prune.Pruning(HPARAMS, second).get_masks()[0].numpy()
    assert np.mean(mask == 0) == pytest.approx(0.75, abs=0.01)
    assert (tmp_path / 'ckpt-12.index').exists()


def test_directory_without_checkpoint_or_config(tmp_path):
    with pytest.raises(tf_prune.ModelFileError, match='is unreadable'):
        checkpoints.load_model(str(tmp_path))
    checkpoints.write_model_config(_compiled_model(), str(tmp_path))
    with pytest.raises(tf_prune.ModelFileError, match='no checkpoint in'):
        checkpoints.load_model(str(tmp_path))


def test_a_separate_training_directory_callback_in_either_order(tmp_path):
    x, y = _data()
    first = _compiled_model()
    first.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_prune.TrainingDirectory(str(tmp_path), HPARAMS),
        tf_prune.PruningCallback(HPARAMS)])
    masks = tf_prune.Pruning(HPARAMS, first).get_masks()
    restored_sparsity = float(np.mean(np.concatenate(
        [m.numpy().ravel() for m in masks]) == 0))
    assert restored_sparsity > 0
    # Listed after the PruningCallback, the restore still comes before the
    # sparsity the first logs show.
    second = _compiled_model()
    logged = []
    second.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS),
        tf_prune.TrainingDirectory(str(tmp_path), HPARAMS),
        keras.callbacks.LambdaCallback(on_train_batch_end=lambda _, logs:
                                       logged.append(float(logs['sparsity'])))])
    assert int(second.optimizer.iterations) == 12
    assert logged[0] == pytest.approx(restored_sparsity)


def test_the_directory_records_its_hparams_and_refuses_others(tmp_path):
    x, y = _data()
    model = _compiled_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path),
                                 log_dir=str(tmp_path))])
    assert checkpoints.recorded_hparams(str(tmp_path)) == (
        tf_prune.get_pruning_hparams().parse(HPARAMS))
    before = sorted(p.name for p in tmp_path.iterdir())
    other = HPARAMS.replace('target_sparsity=0.75', 'target_sparsity=0.5')
    for make in (lambda: tf_prune.PruningCallback(
                     other, checkpoint_dir=str(tmp_path)),
                 lambda: tf_prune.TrainingDirectory(str(tmp_path), other)):
        with pytest.raises(ValueError) as error:
            make()
        message = str(error.value)
        assert '\n' not in message
        assert "'target_sparsity=0.75'" in message
        assert "'target_sparsity=0.5'" in message
        assert 'another directory' in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # The same hparams, written another way, continue the run.
    tf_prune.TrainingDirectory(str(tmp_path), HPARAMS + ',nbins=256')


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_a_damaged_newest_checkpoint_is_passed_over_when_training_resumes(
        tmp_path):
    x, y = _data()
    _compiled_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path))])
    _truncate(tmp_path / 'ckpt-8.data-00000-of-00001')
    damage = (f'checkpoint {tmp_path}/ckpt-8 is unreadable: {tmp_path}/'
              f'ckpt-8.data-00000-of-00001 is truncated')

    # Reading the model, as the tools do, is refused: not the latest one.
    with pytest.raises(tf_prune.ModelFileError) as error:
        checkpoints.load_model(str(tmp_path))
    assert str(error.value) == damage
    # Training passes over it, saying so in one line.
    assert checkpoints.latest_step(str(tmp_path)) == 4
    assert checkpoints.resume_from(str(tmp_path)) == (
        str(tmp_path / 'ckpt-4'),
        f'{damage}; training continues from {tmp_path}/ckpt-4, the newest '
        f'intact checkpoint')
    second = _compiled_model()
    second.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path))])
    assert int(second.optimizer.iterations) == 8  # 4 restored, 4 trained
    # Its checkpoint at step 8 replaces the damaged one.
    loaded = checkpoints.load_model(str(tmp_path))
    np.testing.assert_array_equal(loaded(x).numpy(), second(x).numpy())


def test_no_intact_checkpoint_or_a_bad_state_file_stops_with_one_line(tmp_path):
    x, y = _data()
    model = _compiled_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(HPARAMS, checkpoint_dir=str(tmp_path))])
    _truncate(tmp_path / 'ckpt-4.data-00000-of-00001')
    expected = (f'no intact checkpoint in {tmp_path}: checkpoint '
                f'{tmp_path}/ckpt-4 is unreadable: {tmp_path}/'
                f'ckpt-4.data-00000-of-00001 is truncated')
    for read in (checkpoints.latest_step, checkpoints.resume_from):
        with pytest.raises(tf_prune.ModelFileError) as error:
            read(str(tmp_path))
        assert str(error.value) == expected
    with pytest.raises(tf_prune.ModelFileError, match='no intact checkpoint'):
        _compiled_model().fit(x, y, batch_size=16, epochs=1, verbose=0,
                              callbacks=[tf_prune.PruningCallback(
                                  HPARAMS, checkpoint_dir=str(tmp_path))])

    # A state file TF's manager would ignore, and write over.
    (tmp_path / 'checkpoint').write_bytes(b'\x8a\x00 not text')
    with pytest.raises(tf_prune.ModelFileError) as error:
        checkpoints.TrainingCheckpoints(model, str(tmp_path))
    assert str(error.value) == (
        f'{tmp_path}/checkpoint is not a checkpoint state file (binary, not '
        f'text); to use its newest checkpoint, write \'model_checkpoint_path: '
        f'"ckpt-4"\' into it')

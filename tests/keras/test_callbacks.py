"""PruningCallback in fit, and TensorBoard summaries read back from the files."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

import tf_prune
from tf_prune.keras.wrapper import find_wrappers
from tests.conftest import load_golden

RNG = np.random.default_rng(5)


def _contrib_layers_model():
    """conv1, conv2 and dense: the layers of contrib's golden summaries."""
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, name='conv1')(inputs)
    x = keras.layers.Conv2D(4, 3, name='conv2')(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name='dense')(x))


def _read_events(log_dir):
    """{tag: [(step, value)]} of every tensor summary under log_dir."""
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return {tag: [(e.step, tf.make_ndarray(e.tensor_proto))
                  for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()['tensors']}


def _fit(model, spec, log_dir, steps, batch_size=4):
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    x = RNG.normal(size=(steps * batch_size, 6, 6, 1)).astype(np.float32)
    y = RNG.normal(size=(steps * batch_size, 2)).astype(np.float32)
    callback = tf_prune.PruningCallback(spec, log_dir=str(log_dir))
    history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0,
                        callbacks=[callback])
    return callback, history


def test_event_files_carry_contribs_tags_at_each_update_and_the_end(tmp_path):
    golden = load_golden('summaries.json')
    spec = (f"{golden['spec']},pruning_frequency=4,begin_pruning_step=0,"
            f"sparsity_function_end_step=8,target_sparsity=0.75")
    model = tf_prune.prune(_contrib_layers_model(), spec)
    callback, _ = _fit(model, spec, tmp_path, steps=10)
    events = _read_events(tmp_path)
    assert set(golden['tags']) <= set(events)
    prefix = 'cifar10_pruning_summaries'
    # Updates at steps 4 and 8, then the final state at step 10.
    assert [s for s, _ in events[f'{prefix}/last_mask_update_step']] == [4, 8, 10]
    assert [int(v) for _, v in events[f'{prefix}/last_mask_update_step']] == [
        4, 8, 8]
    pruning = callback.pruning
    for layer, sparsity in zip(golden['layers'], pruning.get_weight_sparsity()):
        final_step, final_value = events[f'{prefix}/{layer}/mask/sparsity'][-1]
        assert final_step == 10
        assert float(final_value) == pytest.approx(float(sparsity))
    thresholds = events[f'{prefix}/dense/threshold/threshold']
    assert float(thresholds[-1][1]) == pytest.approx(
        float(pruning.get_thresholds()[2].numpy()))
    schedule = [float(v) for _, v in events[f'{prefix}/sparsity']]
    assert schedule == pytest.approx([
        float(tf_prune.compute_sparsity(pruning.hparams, s)) for s in (4, 8, 10)])
    for layer in golden['layers']:
        histogram = events[f'{prefix}/{layer}/kernel/masked_weight']
        assert [s for s, _ in histogram] == [4, 8, 10]


def test_logs_show_the_model_sparsity(tmp_path):
    spec = 'pruning_frequency=1,sparsity_function_end_step=4,target_sparsity=0.5'
    model = tf_prune.prune(_contrib_layers_model(), spec)
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    seen = []
    model.fit(RNG.normal(size=(24, 6, 6, 1)), RNG.normal(size=(24, 2)),
              batch_size=4, verbose=0, callbacks=[
                  tf_prune.PruningCallback(spec),
                  keras.callbacks.LambdaCallback(
                      on_train_batch_end=lambda b, logs: seen.append(
                          float(logs['sparsity'])))])
    masks = [w.pruned_weights[0].mask.numpy()
             for w in find_wrappers(model)]
    zeros = sum(float(np.sum(m == 0)) for m in masks)
    total = sum(m.size for m in masks)
    assert seen[-1] == pytest.approx(zeros / total)
    assert seen[0] < seen[-1]
    assert seen[-1] == pytest.approx(0.5, abs=0.01)


def test_callback_without_log_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tf_prune.prune(_contrib_layers_model())
    model.compile('sgd', 'mse')
    model.fit(RNG.normal(size=(8, 6, 6, 1)), RNG.normal(size=(8, 2)), verbose=0,
              callbacks=[tf_prune.PruningCallback('')])
    assert not list(tmp_path.iterdir())


def test_add_pruning_summaries_uses_the_default_writer(tmp_path):
    model = tf_prune.prune(_contrib_layers_model())
    pruning = tf_prune.Pruning('name=custom', model)
    pruning.mask_update(60)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        pruning.add_pruning_summaries(60)
    writer.flush()
    events = _read_events(tmp_path)
    assert sorted(events) == sorted(
        ['custom_summaries/sparsity', 'custom_summaries/model_sparsity',
         'custom_summaries/last_mask_update_step']
        + [f'custom_summaries/{layer}/{kind}'
           for layer in ('conv1', 'conv2', 'dense')
           for kind in ('mask/sparsity', 'threshold/threshold')])
    assert float(events['custom_summaries/sparsity'][0][1]) == pytest.approx(
        float(tf_prune.compute_sparsity(pruning.hparams, 60)))


def test_one_callback_serves_two_fits_and_a_new_model():
    spec = 'pruning_frequency=2,sparsity_function_end_step=6,target_sparsity=0.5'
    callback = tf_prune.PruningCallback(spec)
    x = RNG.normal(size=(16, 6, 6, 1)).astype(np.float32)
    y = RNG.normal(size=(16, 2)).astype(np.float32)
    model = tf_prune.prune(_contrib_layers_model(), spec)
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    first = callback.pruning
    model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    assert callback.pruning is first
    assert int(first.last_mask_update_step) == 8
    other = tf_prune.prune(_contrib_layers_model(), spec)
    other.compile(keras.optimizers.SGD(0.01), 'mse')
    other.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    assert callback.pruning is not first
    assert callback.pruning.model is other


# Bad overrides and weights inside fit (issue 16).

@pytest.mark.parametrize('sparsity', [float('nan'), 1.0, -0.5, tf.Variable(np.inf)])
def test_sparsity_override_outside_the_unit_interval_is_a_value_error(sparsity):
    with pytest.raises(ValueError, match=(
            r'PruningCallback argument sparsity must be in \[0, 1\) \(the '
            r'global target sparsity\), got')):
        tf_prune.PruningCallback('', sparsity=sparsity)


def _zero_dense_model():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3, use_bias=False, name='dense',
                               kernel_initializer='zeros')
    return keras.Model(inputs, dense(inputs))


def test_histogram_threshold_on_a_kernel_that_stays_zero_in_fit():
    spec = 'threshold_method=histogram,pruning_frequency=1,target_sparsity=0.5'
    model = tf_prune.prune(_zero_dense_model(), spec)
    model.compile(keras.optimizers.SGD(0.0), 'mse')
    callback = tf_prune.PruningCallback(spec)
    model.fit(np.ones((8, 4)), np.ones((8, 3)), batch_size=4, verbose=0,
              callbacks=[callback])
    # TF 1.13's mask keeps |w| > 0: an all-zero kernel is all pruned.
    assert int(callback.pruning.last_mask_update_step.numpy()) == 2
    assert callback.pruning.get_masks()[0].numpy().sum() == 0


def test_nan_weights_stop_fit_with_the_weight_named():
    spec = 'pruning_frequency=1'
    model = tf_prune.prune(_zero_dense_model(), spec)
    model.get_layer('dense').layer.kernel.assign(np.full((4, 3), np.nan))
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    with pytest.raises(tf.errors.InvalidArgumentError, match=(
            'weight dense/kernel has NaN or Inf values; the mask update '
            'cannot rank them')):
        model.fit(np.ones((8, 4)), np.ones((8, 3)), batch_size=4, verbose=0,
                  callbacks=[tf_prune.PruningCallback(spec)])

"""tf_prune.tfmot: tfmot 0.8.1's names, defaults and behaviour on Keras 3.

Exactness against the real tfmot (masks, schedules, summaries, messages) is
in test_traces.py; these tests cover what the facade does beyond a trace.
"""

import inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tf_prune
from tests.conftest import ROOT, project_env
from tf_prune import tfmot

sparsity = tfmot.sparsity.keras

# tfmot 0.8.1's `tensorflow_model_optimization/python/core/api/sparsity/
# keras/__init__.py`.
TFMOT_NAMES = [
    'ConstantSparsity', 'PolynomialDecay', 'PrunableLayer',
    'PruneForLatencyOnXNNPack', 'PruningPolicy', 'PruningSchedule',
    'PruningSummaries', 'UpdatePruningStep', 'prune_low_magnitude',
    'prune_scope', 'strip_pruning']


def _data(input_shape, outputs, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, *input_shape)).astype('float32'),
            rng.normal(size=(n, outputs)).astype('float32'))


def _dense_model():
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(16, activation='relu', name='dense1'),
        keras.layers.Flatten(name='flatten'),
        keras.layers.Dense(4, name='dense2')])


def _fit(model, x, y, epochs=1, callbacks=None):
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
    model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()] + (callbacks or []))
    return model


def _masks(model):
    return {p.name: p.mask.numpy() for w in tfmot_wrappers(model)
            for p in w.pruned_weights}


def tfmot_wrappers(model):
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Wrapper)]


def test_the_api_has_tfmot_names_and_both_import_spellings():
    assert sorted(sparsity.__all__) == TFMOT_NAMES
    from tf_prune.tfmot.sparsity import keras as spelled  # tfmot's idiom
    assert all(getattr(spelled, n) is getattr(sparsity, n)
               for n in TFMOT_NAMES)
    with pytest.raises(AttributeError, match='tfmot.quantization is not '
                       'part of tf_prune'):
        tfmot.quantization  # noqa: B018


def test_defaults_are_tfmot_defaults():
    signature = inspect.signature(sparsity.prune_low_magnitude)
    defaults = {n: p.default for n, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {'pruning_schedule': None, 'block_size': (1, 1),
                        'block_pooling_type': 'AVG', 'pruning_policy': None,
                        'sparsity_m_by_n': None}
    # tfmot's default schedule, ConstantSparsity(0.5, 0).
    wrapper = sparsity.prune_low_magnitude(keras.layers.Dense(2))
    assert wrapper.pruning_schedule.get_config() == {
        'class_name': 'ConstantSparsity',
        'config': {'target_sparsity': 0.5, 'begin_step': 0, 'end_step': -1,
                   'frequency': 100}}
    assert sparsity.PolynomialDecay(0.1, 0.5, 0, 10).get_config()[
        'config'] == {'initial_sparsity': 0.1, 'final_sparsity': 0.5,
                      'power': 3, 'begin_step': 0, 'end_step': 10,
                      'frequency': 100}
    summaries = sparsity.PruningSummaries(log_dir='/tmp/unused')
    assert summaries.update_freq == 'epoch'


def test_a_model_is_copied_with_every_layer_wrapped_around_shared_weights():
    model = _dense_model()
    pruned = sparsity.prune_low_magnitude(model)
    assert [layer.name for layer in pruned.layers] == [
        'prune_low_magnitude_dense1', 'prune_low_magnitude_flatten',
        'prune_low_magnitude_dense2']
    assert pruned.layers[1].pruned_weights == ()
    assert pruned.layers[0].layer is model.layers[0]
    # tfmot's wrapper variables, one mask and threshold per pruned weight.
    assert [v.path for v in pruned.layers[0].state_variables()] == [
        'prune_low_magnitude_dense1/mask',
        'prune_low_magnitude_dense1/threshold',
        'prune_low_magnitude_dense1/pruning_step']
    assert int(pruned.layers[0].pruning_step.numpy()) == -1


def test_a_list_of_layers_and_a_single_layer_are_wrapped():
    layers = [keras.layers.Dense(3), keras.layers.InputLayer((4,))]
    wrapped = sparsity.prune_low_magnitude(layers)
    assert isinstance(wrapped[0], keras.layers.Wrapper)
    assert type(wrapped[1]) is keras.layers.InputLayer
    assert sparsity.prune_low_magnitude(wrapped[:1])[0] is wrapped[0]


def test_training_masks_weights_in_place_and_strip_keeps_the_zeros():
    x, y = _data((12,), 4, n=20)
    pruned = sparsity.prune_low_magnitude(
        _dense_model(), pruning_schedule=sparsity.ConstantSparsity(
            0.75, 0, frequency=1))
    _fit(pruned, x, y)
    for wrapper in (pruned.layers[0], pruned.layers[2]):
        (weight,) = wrapper.pruned_weights
        mask = weight.mask.numpy()
        assert mask.mean() == pytest.approx(0.25, abs=0.02)
        # tfmot writes weight * mask back (the epoch-end re-mask ran).
        assert np.all(weight.weight.numpy()[mask == 0] == 0)
        assert int(wrapper.pruning_step.numpy()) == 5
    stripped = sparsity.strip_pruning(pruned)
    assert [type(layer) for layer in stripped.layers] == [
        keras.layers.Dense, keras.layers.Flatten, keras.layers.Dense]
    assert [layer.name for layer in stripped.layers] == [
        'dense1', 'flatten', 'dense2']
    np.testing.assert_array_equal(stripped.predict(x, verbose=0),
                                  pruned.predict(x, verbose=0))
    assert (stripped.layers[0].kernel.numpy() == 0).mean() == (
        pytest.approx(0.75, abs=0.02))


def test_training_without_update_pruning_step_fails_with_tfmots_message():
    x, y = _data((12,), 4)
    pruned = sparsity.prune_low_magnitude(_dense_model())
    pruned.compile(optimizer='sgd', loss='mse')
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='requires the UpdatePruningStep callback'):
        pruned.fit(x, y, verbose=0)


def test_a_keras_file_loads_without_custom_objects_and_training_resumes(
        tmp_path):
    x, y = _data((6, 6, 8), 4, n=8)
    model = keras.Sequential([
        keras.Input((6, 6, 8)), keras.layers.Conv2D(8, 3, name='conv'),
        keras.layers.Flatten(name='flatten'), keras.layers.Dense(4)])
    pruned = _fit(sparsity.prune_low_magnitude(
        model, sparsity_m_by_n=(2, 4)), x, y)
    path = tmp_path / 'pruned.keras'
    pruned.save(path)
    loaded = keras.models.load_model(path)
    with sparsity.prune_scope():
        in_scope = keras.models.load_model(path)
    for copy in (loaded, in_scope):
        assert [type(layer) for layer in copy.layers] == [
            type(layer) for layer in pruned.layers]
        # tfmot 0.8.1 loses sparsity_m_by_n here; the facade keeps it.
        assert copy.layers[0].sparsity_m_by_n == (2, 4)
        for name, mask in _masks(pruned).items():
            np.testing.assert_array_equal(_masks(copy)[name], mask)
        assert int(copy.layers[0].pruning_step.numpy()) == 2
        np.testing.assert_array_equal(copy.predict(x, verbose=0),
                                      pruned.predict(x, verbose=0))
    _fit(loaded, x, y)
    assert int(loaded.layers[0].pruning_step.numpy()) == 4  # counts on


def test_a_custom_schedule_round_trips_through_a_keras_file(tmp_path):

    @keras.saving.register_keras_serializable(package='test_tfmot')
    class EveryStep(sparsity.PruningSchedule):
        def __init__(self, target):
            self.target = target

        def __call__(self, step):
            return (self._should_prune_in_step(step, 0, -1, 1),
                    tf.constant(self.target, tf.float32))

        def get_config(self):
            return {'class_name': 'test_tfmot>EveryStep',
                    'config': {'target': self.target}}

    x, y = _data((12,), 4)
    pruned = _fit(sparsity.prune_low_magnitude(
        _dense_model(), pruning_schedule=EveryStep(0.5)), x, y)
    assert pruned.layers[0].pruned_weights[0].mask.numpy().mean() == 0.5
    pruned.save(tmp_path / 'custom.keras')
    loaded = keras.models.load_model(tmp_path / 'custom.keras')
    assert loaded.layers[0].pruning_schedule.target == 0.5


def test_a_stripped_model_exports_a_tflite_file_computing_the_same(tmp_path):
    x, y = _data((8, 8, 3), 4, n=8)
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, name='conv'),
        keras.layers.Flatten(), keras.layers.Dense(4)])
    pruned = _fit(sparsity.prune_low_magnitude(
        model, pruning_schedule=sparsity.ConstantSparsity(
            0.8, 0, frequency=1)), x, y)
    stripped = sparsity.strip_pruning(pruned)
    path = tmp_path / 'pruned.tflite'
    tf_prune.export.tflite(stripped, str(path))
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    (output,) = runner(**{interpreter.get_signature_list()[
        'serving_default']['inputs'][0]: x[:1]}).values()
    np.testing.assert_allclose(output, stripped.predict(x[:1], verbose=0),
                               atol=1e-5)
    rows = tf_prune.sparsity_report.report(str(path))
    kernel = next(r for r in rows if r.shape == (8, 3, 3, 3))
    assert kernel.nonzeros == round(0.2 * 216)


def test_a_subclassed_model_is_pruned_in_place_beyond_tfmot():

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(16, activation='relu')
            self.act = keras.layers.ReLU()
            self.out = keras.layers.Dense(4)

        def call(self, inputs, training=None):
            return self.out(self.act(self.hidden(inputs)))

    class NoTrainingArgument(Net):
        def call(self, inputs):
            return super().call(inputs)

    x, y = _data((12,), 4)
    with pytest.raises(ValueError, match='add `training=None` to its call'):
        sparsity.prune_low_magnitude(NoTrainingArgument())
    net = Net()
    net(x)
    pruned = sparsity.prune_low_magnitude(
        net, pruning_schedule=sparsity.ConstantSparsity(0.5, 0, frequency=1))
    assert pruned is net
    assert type(net.act) is keras.layers.ReLU  # nothing to prune: not wrapped
    _fit(net, x, y)
    assert net.hidden.pruned_weights[0].mask.numpy().mean() == 0.5
    assert (net.hidden.layer.kernel.numpy() == 0).mean() == 0.5


def test_layers_tfmot_prunes_differently_follow_its_registry():
    inputs = keras.Input((8, 8, 4))
    outputs = keras.layers.SeparableConv2D(4, 3, name='separable')(
        keras.layers.DepthwiseConv2D(3, name='depthwise')(inputs))
    outputs = keras.layers.Bidirectional(keras.layers.LSTM(3), name='bi')(
        keras.layers.Reshape((16, 4))(outputs))
    pruned = sparsity.prune_low_magnitude(keras.Model(inputs, outputs))
    pruned_names = {w.layer.name: [p.name for p in w.pruned_weights]
                    for w in tfmot_wrappers(pruned)}
    assert pruned_names['depthwise'] == []
    assert pruned_names['separable'] == [
        'prune_low_magnitude_separable/pointwise_kernel']
    # Beyond tfmot: Bidirectional, as tf_prune.prune prunes it.
    assert len(pruned_names['bi']) == 4


def test_a_prunable_layer_prunes_exactly_what_it_returns():

    class Scaled(keras.layers.Layer, sparsity.PrunableLayer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 3))
            self.scale = self.add_weight(shape=(3,))

        def call(self, inputs):
            return inputs @ self.kernel * self.scale

        def get_prunable_weights(self):
            return [self.kernel]

    model = keras.Sequential([keras.Input((5,)), Scaled(name='scaled')])
    pruned = sparsity.prune_low_magnitude(model)
    assert [p.weight for p in pruned.layers[0].pruned_weights] == [
        model.layers[0].kernel]


def test_the_policy_wraps_only_1x1_convolutions_of_a_sparse_friendly_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding='valid')(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding='same')(x)
    x = keras.layers.Conv2D(16, 1, name='pointwise')(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    outputs = keras.layers.Flatten()(x)
    pruned = sparsity.prune_low_magnitude(
        keras.Model(inputs, outputs),
        pruning_policy=sparsity.PruneForLatencyOnXNNPack())
    assert [w.name for w in tfmot_wrappers(pruned)] == [
        'prune_low_magnitude_pointwise']
    no_stem = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
        keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match='Could not find `Conv2D 3x3` layer'):
        sparsity.prune_low_magnitude(
            no_stem, pruning_policy=sparsity.PruneForLatencyOnXNNPack())


def test_summaries_also_write_the_trained_state(tmp_path):
    from tests.helpers.tensorboard_read import LogDir
    x, y = _data((12,), 4, n=20)
    pruned = sparsity.prune_low_magnitude(
        _dense_model(), pruning_schedule=sparsity.ConstantSparsity(
            0.5, 0, frequency=1))
    _fit(pruned, x, y, epochs=2,
         callbacks=[sparsity.PruningSummaries(log_dir=str(tmp_path))])
    tag = 'prune_low_magnitude_dense1/mask:0/sparsity'
    series = LogDir(tmp_path / 'metrics').chart_series('.', f'^{tag}$')[tag]
    # Epoch beginnings (steps 0 and 5), as tfmot; then the end (step 10).
    assert [step for step, _ in series] == [0, 5, 10]
    assert series[-1][1] == pytest.approx(0.5)


def test_the_facade_and_the_contrib_api_share_a_process_independently():
    x, y = _data((12,), 4, n=20)
    spec = 'begin_pruning_step=0,pruning_frequency=1,target_sparsity=0.5,' \
           'sparsity_function_end_step=4'

    def contrib_masks():
        keras.utils.set_random_seed(1)
        model = tf_prune.prune(_dense_model(), spec)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0,
                  callbacks=[tf_prune.PruningCallback(spec)])
        return {p.name: p.mask.numpy()
                for w in tf_prune.keras.wrapper.find_wrappers(model)
                for p in w.pruned_weights}

    def facade_masks():
        keras.utils.set_random_seed(1)
        return _masks(_fit(sparsity.prune_low_magnitude(
            _dense_model(), pruning_schedule=sparsity.ConstantSparsity(
                0.5, 0, frequency=1)), x, y))

    alone_contrib, alone_facade = contrib_masks(), facade_masks()
    # Interleaved: each API's models train as they do alone.
    for expected, masks in ((alone_facade, facade_masks()),
                            (alone_contrib, contrib_masks())):
        assert masks.keys() == expected.keys()
        for name in masks:
            np.testing.assert_array_equal(masks[name], expected[name])
    facade_model = sparsity.prune_low_magnitude(_dense_model())
    with pytest.raises(ValueError, match='pruned with tf_prune.tfmot'):
        tf_prune.Pruning(spec, facade_model)


def test_importing_the_facade_changes_no_global_setting():
    script = (
        'import os, sys, keras, tensorflow as tf\n'
        'before = (keras.config.backend(), keras.config.floatx(), '
        'keras.config.image_data_format(), tf.keras.__version__)\n'
        'from tf_prune import tfmot\n'
        'tfmot.sparsity.keras.prune_low_magnitude(keras.layers.Dense(1))\n'
        'after = (keras.config.backend(), keras.config.floatx(), '
        'keras.config.image_data_format(), tf.keras.__version__)\n'
        'assert before == after, (before, after)\n'
        'assert after[3].startswith("3."), after\n'
        'assert "TF_USE_LEGACY_KERAS" not in os.environ\n'
        'assert not any(m.split(".")[0] in ("tf_keras", '
        '"tensorflow_model_optimization") for m in sys.modules)\n'
        'print("ok")\n')
    result = subprocess.run([sys.executable, '-c', script], cwd=ROOT,
                            env={k: v for k, v in project_env().items()
                                 if k != 'TF_USE_LEGACY_KERAS'},
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == 'ok', result.stderr[-2000:]


def test_a_first_layer_given_input_shape_builds_its_sequential_model():
    with pytest.warns(UserWarning):  # Keras 3 prefers keras.Input
        layer = keras.layers.Dense(2, input_shape=(3,))
    model = keras.Sequential([sparsity.prune_low_magnitude(layer)])
    assert model.built and model.output_shape == (None, 2)


def test_wrapped_layers_get_tfmots_get_prunable_weights_without_interfering():
    inputs = keras.Input((4, 8))
    attention = keras.layers.MultiHeadAttention(2, 4, name='attention')
    model = keras.Model(inputs, attention(inputs, inputs))
    pruned = sparsity.prune_low_magnitude(model)
    wrapper = pruned.get_layer('prune_low_magnitude_attention')
    # As tfmot's registry does, the wrapped layer tells what is pruned.
    assert attention.get_prunable_weights() == [
        p.weight for p in wrapper.pruned_weights]
    assert len(attention.get_prunable_weights()) == 4
    # tf_prune.prune of the same layer objects follows its own knowledge
    # (the four kernels, all named `kernel`, by their sublayers' names).
    contrib = tf_prune.prune(model)
    names = [p.name for w in tf_prune.keras.wrapper.find_wrappers(contrib)
             for p in w.pruned_weights]
    assert names == ['attention/query/kernel', 'attention/key/kernel',
                     'attention/value/kernel', 'attention/attention_output/'
                     'kernel']


def test_contribs_strip_tool_strips_a_saved_facade_model(tmp_path):
    x, y = _data((12,), 4)
    pruned = _fit(sparsity.prune_low_magnitude(
        _dense_model(), pruning_schedule=sparsity.ConstantSparsity(
            0.75, 0, frequency=1)), x, y)
    pruned.save(tmp_path / 'pruned.keras')
    result = subprocess.run(
        [sys.executable, 'tools/strip_pruning_vars.py',
         f'--model={tmp_path / "pruned.keras"}', '--output_format=tflite',
         f'--output_dir={tmp_path / "out"}'],
        cwd=ROOT, env=project_env(), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = tf_prune.sparsity_report.report(
        str(tmp_path / 'out' / 'pruning_stripped.tflite'))
    kernels = [row for row in rows if len(row.shape) == 2]
    assert sorted(row.nonzeros for row in kernels) == [16, 48]  # 1/4 kept


@pytest.mark.slow
def test_mirrored_strategy_fit_masks_every_replica_alike(
        tmp_path):
    out = tmp_path / 'mirrored.npz'
    result = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.tfmot_mirrored_fit', str(out)],
        cwd=ROOT, env=project_env(), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    arrays = np.load(out)
    for name in ('prune_low_magnitude_a', 'prune_low_magnitude_b'):
        assert int(arrays[f'{name}/step']) == 8  # once per step, not replica
        alone = arrays[f'{name}/alone']
        assert 1 - alone.mean() == pytest.approx(0.8, abs=0.02)
        masks = [arrays[f'{name}/{replica}/mask'] for replica in (0, 1)]
        np.testing.assert_array_equal(masks[0], masks[1])
        assert masks[0].sum() == alone.sum()
        # Two replicas sum their gradients in another order than one device:
        # a weight at the threshold may swap with its neighbour.
        assert (masks[0] != alone).mean() <= 0.05
        for replica, mask in enumerate(masks):
            assert np.all(arrays[f'{name}/{replica}/kernel'][mask == 0] == 0)

"""The facade against traces recorded with the real tfmot 0.8.1.

tests/data/tfmot_081/ (README.md there says how it was made) holds, for
Dense, Conv2D, LSTM, block and 2:4 models under a PolynomialDecay and a
ConstantSparsity schedule, tfmot's masks, thresholds and weights after each
of 10 SGD steps, its summaries, its schedules' values and its error
messages. The same models, weights and data train here through
`tf_prune.tfmot` on Keras 3.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import ROOT
from tests.helpers.tensorboard_read import LogDir
from tf_prune import tfmot

sparsity = tfmot.sparsity.keras
DATA = ROOT / 'tests' / 'data' / 'tfmot_081'
TRACES = json.loads((DATA / 'traces.json').read_text())
CASES = {case['case']: case for case in TRACES['cases']}
TRAINED = [name for name, case in CASES.items() if not case['fit_error']]


def _schedule(spec):
    return getattr(sparsity, spec['class_name'])(**spec['kwargs'])


def _model(case, arrays):
    """The case's Keras 3 model with its recorded initial weights."""
    definition = case['model']
    model = keras.Sequential(
        [keras.Input(tuple(definition['input']['shape']), name='input')] +
        [getattr(keras.layers, layer['class_name'])(**layer['kwargs'])
         for layer in definition['layers']])
    for layer in model.layers:
        count = len(layer.get_weights())
        layer.set_weights([arrays[f'init/{layer.name}/{i}']
                           for i in range(count)])
    return model


def _prune_kwargs(case):
    return {name: tuple(value) if isinstance(value, list) else value
            for name, value in case['prune_kwargs'].items()}


class _Recorder(keras.callbacks.Callback):
    """Masks, thresholds, weights and steps after every batch."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(_state(self.model))


def _state(model):
    state = {}
    for wrapper in model.layers:
        state[f'{wrapper.name}/pruning_step'] = int(
            wrapper.pruning_step.numpy())
        for j, pruned in enumerate(wrapper.pruned_weights):
            for kind in ('mask', 'threshold', 'weight'):
                state[f'{wrapper.name}/{j}/{kind}'] = getattr(
                    pruned, kind).numpy()
    return state


@pytest.fixture(scope='module')
def replayed(tmp_path_factory):
    """Each trained case run through the facade: (recorder, model, logs)."""
    runs = {}
    for name in TRAINED:
        case = CASES[name]
        arrays = np.load(DATA / case['npz'])
        pruned = sparsity.prune_low_magnitude(
            _model(case, arrays), pruning_schedule=_schedule(case['schedule']),
            **_prune_kwargs(case))
        training = case['training']
        pruned.compile(optimizer=keras.optimizers.SGD(
            training['optimizer']['get_config']['learning_rate']),
            loss=training['loss'])
        recorder = _Recorder()
        log_dir = tmp_path_factory.mktemp(name)
        pruned.fit(arrays['x'], arrays['y'],
                   batch_size=training['batch_size'],
                   epochs=training['epochs'], shuffle=False, verbose=0,
                   callbacks=[sparsity.UpdatePruningStep(),
                              sparsity.PruningSummaries(log_dir=str(log_dir)),
                              recorder])
        runs[name] = (arrays, recorder, pruned, log_dir)
    return runs


@pytest.mark.parametrize('name', TRAINED)
def test_masks_and_thresholds_equal_tfmots_at_every_step(name, replayed):
    arrays, recorder, pruned, _ = replayed[name]
    case = CASES[name]
    assert [layer.name for layer in pruned.layers] == (
        case['pruned_layer_names'])
    assert len(recorder.steps) == case['training']['steps']
    for wrapper in case['wrappers']:
        prefix = wrapper['name']
        np.testing.assert_array_equal(
            [s[f'{prefix}/pruning_step'] for s in recorder.steps],
            arrays[f'steps/{prefix}/pruning_step'])
        for j in range(len(wrapper['pruned_weights'])):
            for step, state in enumerate(recorder.steps):
                where = f'{name} step {step + 1} {prefix}/{j}'
                np.testing.assert_array_equal(
                    state[f'{prefix}/{j}/mask'],
                    arrays[f'steps/{prefix}/{j}/mask'][step], err_msg=where)
                assert state[f'{prefix}/{j}/threshold'] == (
                    arrays[f'steps/{prefix}/{j}/threshold'][step]), where
                np.testing.assert_allclose(
                    state[f'{prefix}/{j}/weight'],
                    arrays[f'steps/{prefix}/{j}/weight'][step],
                    rtol=1e-5, atol=1e-6, err_msg=where)


@pytest.mark.parametrize('name', TRAINED)
def test_after_fit_weights_hold_weight_times_mask_as_tfmots(name, replayed):
    arrays, _, pruned, _ = replayed[name]
    for wrapper in pruned.layers:
        for j, pruned_weight in enumerate(wrapper.pruned_weights):
            key = f'final/{wrapper.name}/{j}'
            np.testing.assert_array_equal(pruned_weight.mask.numpy(),
                                          arrays[f'{key}/mask'])
            weight = pruned_weight.weight.numpy()
            np.testing.assert_allclose(weight, arrays[f'{key}/weight'],
                                       rtol=1e-5, atol=1e-6)
            assert np.all(weight[arrays[f'{key}/mask'] == 0] == 0)
    stripped = sparsity.strip_pruning(pruned)
    assert [layer.name for layer in stripped.layers] == (
        CASES[name]['stripped']['layer_names'])


def _our_tag(case, tag, step):
    """The facade's tag for one of tfmot's: the same, except where several
    masks of a wrapper share tfmot's variable name; tfmot then logged the
    last one's value, which the facade tags by its weight."""
    shared = any(row[0] == tag and row[1] == step and row[2] > 1
                 for row in case['summary_sources'])
    if not shared:
        return tag
    wrapper, variable, kind = tag.split('/')
    last = next(w for w in case['wrappers'] if w['name'] == wrapper)[
        'pruned_weights'][-1]['attr'].split('.')[-1]
    return f"{wrapper}/{last}/{variable}/{kind}"


@pytest.mark.parametrize('name', TRAINED)
def test_summaries_have_tfmots_tags_and_values(name, replayed):
    arrays, recorder, _, log_dir = replayed[name]
    case = CASES[name]
    expected = case['summaries']['scalars']['metrics']
    ours = LogDir(log_dir / 'metrics').chart_series('.', '.')
    for tag, step, value in expected:
        series = dict(ours[_our_tag(case, tag, step)])
        assert np.float32(series[step]) == np.float32(value), (tag, step)
    # Beyond tfmot: the trained state at the last step.
    last = recorder.steps[-1]
    for wrapper in case['wrappers']:
        for j, pruned in enumerate(wrapper['pruned_weights']):
            several = len(wrapper['pruned_weights']) > 1
            scope = f"{wrapper['name']}/{pruned['attr'].split('.')[-1]}" \
                if several else wrapper['name']
            tag = f'{scope}/mask:0/sparsity'
            final_step, final = ours[tag][-1]
            assert final_step == case['training']['steps']
            assert final == pytest.approx(
                1 - last[f"{wrapper['name']}/{j}/mask"].mean())


def test_blocks_tfmot_cannot_pool_are_pruned_here():
    """tfmot fails on a (1, 4) block over a 16x4 kernel (its pooled 16x1
    squeezes to rank 1); the facade prunes it in whole 1x4 blocks."""
    case = CASES['block_dense__poly']
    assert 'rank 2' in case['fit_error']['message']
    arrays = np.load(DATA / case['npz'])
    pruned = sparsity.prune_low_magnitude(
        _model(case, arrays), pruning_schedule=_schedule(case['schedule']),
        **_prune_kwargs(case))
    pruned.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
    pruned.fit(arrays['x'], arrays['y'], batch_size=4, epochs=2,
               shuffle=False, verbose=0,
               callbacks=[sparsity.UpdatePruningStep()])
    mask = pruned.layers[1].pruned_weights[0].mask.numpy()
    assert mask.shape == (16, 4)
    assert np.all((mask == 0).all(axis=1) | (mask == 1).all(axis=1))
    # 16 blocks at sparsity 0.7 keep k = round(16 * 0.3) = 5, or more on
    # ties (the case's dead units tie their blocks).
    assert 5 <= mask[:, 0].sum() <= 6


SCHEDULES = json.loads((DATA / 'schedules.json').read_text())['schedules']


@pytest.mark.parametrize('recorded', SCHEDULES, ids=lambda s: s['call'])
def test_schedules_equal_tfmots_bit_for_bit(recorded):
    schedule = getattr(sparsity, recorded['class_name'])(**recorded['kwargs'])
    assert schedule.get_config() == recorded['get_config']
    for step, should, bits in zip(recorded['steps'],
                                  recorded['should_prune'],
                                  recorded['sparsity_float32_bits']):
        prune, value = schedule(tf.constant(step, tf.int64))
        assert bool(prune) == should, step
        assert int(np.float32(value.numpy()).view(np.uint32)) == bits, step


ERRORS = {entry['call']: entry for entry in json.loads(
    (DATA / 'errors.json').read_text())['errors']}


def _tfmot_message(call):
    entry = ERRORS[call]
    return entry.get('inner_error') or entry['message']


def _custom_layer():

    class KernelLayer(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 2))

        def call(self, inputs):
            return inputs @ self.kernel

    return KernelLayer()


# tfmot's calls whose errors the facade raises with tfmot's message.
SAME_MESSAGE = {
    'ConstantSparsity(1.0, 0)': lambda: sparsity.ConstantSparsity(1.0, 0),
    'ConstantSparsity(-0.1, 0)': lambda: sparsity.ConstantSparsity(-0.1, 0),
    'ConstantSparsity(0.5, -1)': lambda: sparsity.ConstantSparsity(0.5, -1),
    'ConstantSparsity(0.5, 5, end_step=3)':
        lambda: sparsity.ConstantSparsity(0.5, 5, end_step=3),
    'ConstantSparsity(0.5, 0, end_step=-5)':
        lambda: sparsity.ConstantSparsity(0.5, 0, end_step=-5),
    'ConstantSparsity(0.5, 0, frequency=0)':
        lambda: sparsity.ConstantSparsity(0.5, 0, frequency=0),
    'PolynomialDecay(0.1, 0.5, 0, -1)':
        lambda: sparsity.PolynomialDecay(0.1, 0.5, 0, -1),
    'PolynomialDecay(0.6, 1.2, 0, 10)':
        lambda: sparsity.PolynomialDecay(0.6, 1.2, 0, 10),
    'PolynomialDecay(1.0, 0.5, 0, 10)':
        lambda: sparsity.PolynomialDecay(1.0, 0.5, 0, 10),
    "prune_low_magnitude(Dense(2), block_pooling_type='MIN')":
        lambda: sparsity.prune_low_magnitude(keras.layers.Dense(2),
                                             block_pooling_type='MIN'),
    'prune_low_magnitude(42)': lambda: sparsity.prune_low_magnitude(42),
    "prune_low_magnitude('dense')":
        lambda: sparsity.prune_low_magnitude('dense'),
    "prune_low_magnitude(Dense(2), sparsity_m_by_n=(2, '4'))":
        lambda: sparsity.prune_low_magnitude(keras.layers.Dense(2),
                                             sparsity_m_by_n=(2, '4')),
    'prune_low_magnitude(Dense(2), sparsity_m_by_n=(2, 4, 1))':
        lambda: sparsity.prune_low_magnitude(keras.layers.Dense(2),
                                             sparsity_m_by_n=(2, 4, 1)),
    'prune_low_magnitude(Dense(2), sparsity_m_by_n=5)':
        lambda: sparsity.prune_low_magnitude(keras.layers.Dense(2),
                                             sparsity_m_by_n=5),
    "PruningSummaries(log_dir='')":
        lambda: sparsity.PruningSummaries(log_dir=''),
    'PruningSummaries(log_dir=None)':
        lambda: sparsity.PruningSummaries(log_dir=None),
    'prune_low_magnitude(Sequential([Input((8, 8, 3)), Conv2D(4, 3), '
    'GlobalAveragePooling2D()]), pruning_policy=PruneForLatencyOnXNNPack())':
        lambda: sparsity.prune_low_magnitude(
            keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D()]),
            pruning_policy=sparsity.PruneForLatencyOnXNNPack()),
}


@pytest.mark.parametrize('call', sorted(SAME_MESSAGE))
def test_errors_carry_tfmots_messages(call):
    with pytest.raises(ValueError) as error:
        SAME_MESSAGE[call]()
    assert ERRORS[call]['type'] == 'ValueError'
    assert str(error.value) == _tfmot_message(call)


def test_an_unsupported_layer_gets_tfmots_message_naming_the_class():
    for to_prune in (_custom_layer(),
                     keras.Sequential([keras.Input((3,)), _custom_layer()])):
        with pytest.raises(ValueError) as error:
            sparsity.prune_low_magnitude(to_prune)
        expected = _tfmot_message(next(
            call for call in ERRORS
            if call.startswith('prune_low_magnitude(KernelLayer())')))
        # tfmot names the class as `<class '__main__.KernelLayer'>`.
        assert str(error.value).split('You passed:')[0] == (
            expected.split('You passed:')[0])
        assert 'KernelLayer' in str(error.value)


def test_errors_tfmot_raised_late_or_unclearly_are_early_and_clear():
    # tfmot: InvalidArgumentError at the first training step.
    assert ERRORS['prune_low_magnitude(Sequential([Input((3,)), Dense(2)]), '
                  'sparsity_m_by_n=(4, 4)) then fit with UpdatePruningStep'][
        'stage'] == 'fit'
    with pytest.raises(ValueError, match=r'must be \(m, n\) with 0 < m < n'):
        sparsity.prune_low_magnitude(keras.layers.Dense(2),
                                     sparsity_m_by_n=(4, 4))
    # tfmot: a tuple as the message.
    assert ERRORS['strip_pruning(Dense(2))']['message'].startswith('(')
    with pytest.raises(ValueError, match='strip_pruning expects a '
                       'keras.Model, got Dense'):
        sparsity.strip_pruning(keras.layers.Dense(2))
    # tfmot: the same message, with the weight's shape added.
    block_call = ('prune_low_magnitude(Sequential([Input((8, 8, 3)), '
                  'Conv2D(4, 3)]), block_size=(1, 4)) then fit with '
                  'UpdatePruningStep')
    with pytest.raises(ValueError) as error:
        sparsity.prune_low_magnitude(
            keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Conv2D(4, 3)]), block_size=(1, 4))
    assert str(error.value).startswith(_tfmot_message(block_call)[:-1])


def test_m_by_n_on_conv1d_beyond_tfmot():
    """tfmot rejects a Conv1D kernel at fit; its input-channel axis is as
    well defined as Conv2D's, and the facade prunes it 2:4."""
    call = ('prune_low_magnitude(Sequential([Input((10, 8)), Conv1D(4, 3), '
            'Flatten(), Dense(2)]), sparsity_m_by_n=(2, 4)) then fit with '
            'UpdatePruningStep')
    assert 'is not supported' in _tfmot_message(call)
    model = sparsity.prune_low_magnitude(keras.Sequential([
        keras.Input((10, 8)), keras.layers.Conv1D(4, 3),
        keras.layers.Flatten(), keras.layers.Dense(2)]),
        sparsity_m_by_n=(2, 4))
    model.compile(optimizer='sgd', loss='mse')
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(4, 10, 8)), rng.normal(size=(4, 2)),
              verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    mask = model.layers[0].pruned_weights[0].mask.numpy()  # (3, 8, 4)
    groups = np.moveaxis(mask, 1, -1).reshape(-1, 4)
    assert np.all(groups.sum(axis=1) == 2)


def test_policy_wraps_what_tfmots_wraps():
    for call, entry in ERRORS.items():
        if not call.startswith('prune_low_magnitude(Sequential([Input((8, 8, '
                               '3)), ZeroPadding2D(1)') or entry['raised']:
            continue
        layers = [keras.layers.ZeroPadding2D(1, name='pad'),
                  keras.layers.Conv2D(16, 3, strides=2, padding='valid',
                                      name='conv_stem')]
        if 'conv_1x1' in str(entry['result']):
            layers.append(keras.layers.Conv2D(8, 1, name='conv_1x1'))
        layers.append(keras.layers.GlobalAveragePooling2D(
            keepdims='keepdims=True' in call, name='gap'))
        if 'flatten' in str(entry['result']):
            layers += [keras.layers.Flatten(name='flatten'),
                       keras.layers.Dense(2, name='dense')]
        pruned = sparsity.prune_low_magnitude(
            keras.Sequential([keras.Input((8, 8, 3))] + layers),
            pruning_policy=sparsity.PruneForLatencyOnXNNPack())
        assert [layer.name for layer in pruned.layers] == (
            entry['result']['pruned_layer_names']), call


def test_inference_calls_remask_without_counting_as_tfmots():
    case = CASES['dense__poly']
    inference = case['inference']
    arrays = np.load(DATA / case['npz'])
    pruned = sparsity.prune_low_magnitude(
        _model(case, arrays), pruning_schedule=_schedule(case['schedule']))
    pruned.compile(optimizer=keras.optimizers.SGD(0.05), loss='mse')
    pruned.fit(arrays['x'], arrays['y'], batch_size=4, epochs=2,
               shuffle=False, verbose=0,
               callbacks=[sparsity.UpdatePruningStep()])
    wrapper = pruned.layers[0]
    (weight,) = wrapper.pruned_weights
    weight.weight.assign(weight.weight + 1)
    pruned(arrays['x'], training=False)
    np.testing.assert_array_equal(weight.weight.numpy() == 0,
                                  weight.mask.numpy() == 0)
    assert int(wrapper.pruning_step.numpy()) == 10
    assert inference  # recorded: the same re-mask, the step unchanged
    pruned(arrays['x'], training=True)
    assert int(wrapper.pruning_step.numpy()) == 11

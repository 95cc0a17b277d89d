"""nm_sparsity in Keras: N:M masks on contrib's gate, through fit and strip."""

import keras
import numpy as np
import pytest

import tf_prune
from tests.helpers.n_of_m import group_counts
from tests.helpers.n_of_m import reference_mask
from tests.helpers.tensorboard_read import LogDir
from tf_prune.keras.wrapper import find_wrappers

SPEC = ('name=nm,nm_sparsity=2:4,begin_pruning_step=2,pruning_frequency=2,'
        'end_pruning_step=4')


def _model():
    """conv: kernel 3x3x6x4 (groups of 4 and 2 along its 6 input channels);
    fc: kernel 64x3 (16 groups of 4). The same weights each time."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 6))
    x = keras.layers.Conv2D(4, 3, name='conv')(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name='fc')(x))


class _Recorder(keras.callbacks.Callback):
    """Each step's kernels and masks, after PruningCallback's update."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        pruned = [p for w in find_wrappers(self.model) for p in w.pruned_weights]
        self.steps.append({
            'step': int(self.model.optimizer.iterations.numpy()),
            'kernels': [p.weight.numpy() for p in pruned],
            'masks': [p.mask.numpy() for p in pruned],
            'thresholds': [float(p.threshold.numpy()) for p in pruned],
            'sparsity': float(logs['sparsity']),
        })


def _fit(model, steps, log_dir=None, spec=SPEC):
    model.compile(keras.optimizers.SGD(0.1), 'mse')
    callback = tf_prune.PruningCallback(spec, log_dir=log_dir)
    recorder = _Recorder()
    rng = np.random.default_rng(11)
    model.fit(rng.normal(size=(4 * steps, 6, 6, 6)).astype(np.float32),
              rng.normal(size=(4 * steps, 3)).astype(np.float32),
              batch_size=4, epochs=1, verbose=0,
              callbacks=[callback, recorder])
    return callback.pruning, recorder.steps


def _zero_fraction(masks):
    return sum(int(np.sum(m == 0)) for m in masks) / sum(m.size for m in masks)


def test_masks_become_n_of_m_at_each_gated_update_only(tmp_path):
    model = tf_prune.prune(_model(), SPEC)
    pruning, steps = _fit(model, steps=6, log_dir=str(tmp_path))
    assert [s['step'] for s in steps] == [1, 2, 3, 4, 5, 6]
    # Step 1 is before begin_pruning_step: all ones.
    assert all(m.min() == 1 for m in steps[0]['masks'])
    assert steps[0]['sparsity'] == 0.0
    for record in steps[1:]:
        step = record['step']
        # Updates at 2 and 4 (pruning_frequency 2, end_pruning_step 4); the
        # masks then hold until the next one.
        updated_at = min(4, step - step % 2)
        source = next(s for s in steps if s['step'] == updated_at)
        for kernel, mask in zip(source['kernels'], record['masks']):
            np.testing.assert_array_equal(mask, reference_mask(kernel, 2, 4),
                                          err_msg=str(step))
            counts = group_counts(mask, 4)
            assert (counts == 2).all(), step  # conv's last run has 2 of 2
        assert record['thresholds'] == [0.0, 0.0]  # N:M masks keep them
        # The logs show the masks' real zeros: conv keeps 4 of 6 along its
        # input channels, fc 2 of 4.
        assert record['sparsity'] == pytest.approx(
            _zero_fraction(record['masks']))
        assert record['sparsity'] == pytest.approx((72 + 96) / (216 + 192))
    # The masks moved with the weights between the two updates.
    assert not all(np.array_equal(a, b) for a, b in zip(
        steps[1]['masks'], steps[3]['masks']))
    assert int(pruning.last_mask_update_step.numpy()) == 4

    # Summaries: `sparsity` is still contrib's schedule (not what the masks
    # follow); the masks' sparsities and model_sparsity are their zeros.
    series = LogDir(tmp_path).chart_series('.', '^nm_summaries/')
    schedule = [value for _, value in series['nm_summaries/sparsity']]
    assert [step for step, _ in series['nm_summaries/sparsity']] == [2, 4, 6]
    assert schedule == pytest.approx([
        float(tf_prune.compute_sparsity(pruning.hparams, s)) for s in (2, 4, 6)],
        rel=1e-5)
    assert schedule[-1] < 0.2  # far from what the masks hold
    assert series['nm_summaries/model_sparsity'][-1][1] == pytest.approx(
        (72 + 96) / (216 + 192))
    assert series['nm_summaries/conv/mask/sparsity'][-1][1] == pytest.approx(
        1 / 3)
    assert series['nm_summaries/fc/mask/sparsity'][-1][1] == pytest.approx(0.5)


def test_the_stripped_models_kernels_are_two_of_four(tmp_path):
    model = tf_prune.prune(_model(), SPEC)
    _fit(model, steps=4)
    stripped = tf_prune.strip_pruning(model)
    assert not find_wrappers(stripped)
    x = np.random.default_rng(5).normal(size=(2, 6, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(stripped(x), model(x), rtol=1e-5, atol=1e-6)
    for name in ('conv', 'fc'):
        kernel = stripped.get_layer(name).kernel.numpy()
        assert (group_counts(kernel, 4) <= 2).all(), name
        assert (group_counts(kernel, 4) == 2).all(), name  # no zero weights
    # Dense kernels are the pattern's own: exactly half of the fc kernel.
    assert np.count_nonzero(stripped.get_layer('fc').kernel.numpy()) == 96


def test_one_shot_prune_sets_n_of_m_masks():
    model = _model()
    pruned = tf_prune.prune(model, 'nm_sparsity=1:4', one_shot=True)
    for wrapper in find_wrappers(pruned):
        for p in wrapper.pruned_weights:
            np.testing.assert_array_equal(
                p.mask.numpy(), reference_mask(p.weight.numpy(), 1, 4))


def test_use_tpu_compiles_the_n_of_m_update_and_agrees():
    masks = []
    for use_tpu in (False, True):
        model = tf_prune.prune(_model(), SPEC)
        pruning = tf_prune.Pruning(f'{SPEC},use_tpu={use_tpu}', model)
        pruning.mask_update(2)
        masks.append([m.numpy() for m in pruning.get_masks()])
    for eager, compiled in zip(*masks):
        np.testing.assert_array_equal(compiled, eager)
        assert (group_counts(compiled, 4) == 2).all()


class _Scale(keras.layers.Layer):
    """A layer whose pruned weight is a vector."""

    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), name='scale')

    def get_prunable_weights(self):
        return [self.scale]

    def call(self, x):
        return x * self.scale


def test_a_pruned_weight_of_rank_one_is_refused_naming_it():
    inputs = keras.Input((6,))
    model = tf_prune.prune(keras.Model(inputs, _Scale(name='sc')(inputs)),
                           strict=True)
    with pytest.raises(ValueError) as raised:
        tf_prune.Pruning('nm_sparsity=2:4', model)
    assert str(raised.value) == (
        'nm_sparsity=2:4 groups weights along their input-channel axis (the '
        'second to last), which weight sc/scale of shape (6,) lacks; leave it '
        'out of get_prunable_weights() or drop nm_sparsity')
    tf_prune.Pruning('target_sparsity=0.5', model)  # fine without N:M


@pytest.mark.parametrize('make', [
    lambda model: tf_prune.Pruning(SPEC, model, sparsity=0.5),
    lambda model: tf_prune.PruningCallback(SPEC, sparsity=lambda step: 0.5),
], ids=['Pruning', 'PruningCallback'])
def test_a_sparsity_override_is_refused_with_nm_sparsity(make):
    model = tf_prune.prune(_model(), SPEC)
    with pytest.raises(ValueError, match=(
            r'argument sparsity overrides the sparsity schedule, which '
            r'nm_sparsity=2:4 does not use \(each update keeps N of every M '
            r'weights\); drop sparsity or nm_sparsity$')):
        make(model)

"""`structure=channel`: channel masks on contrib's schedule, and `shrink` of
the masked model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.helpers.tensorboard_read import LogDir
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured import cost

ONE_SHOT = 'structure=channel,target_sparsity=0.5'
_L = keras.layers


def _residual(seed=0):
    """Conv-BN stem, a residual block, a 1x1 conv, pooling, a Dense head."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3), name='image')
    x = _L.Conv2D(8, 3, padding='same', name='c1')(image)
    x = _L.BatchNormalization(name='bn1')(x)
    x = _L.ReLU(name='r1')(x)
    y = _L.Conv2D(8, 3, padding='same', name='c2')(x)
    y = _L.BatchNormalization(name='bn2')(y)
    x = _L.Add(name='add')([x, y])
    x = _L.Conv2D(16, 1, activation='relu', name='c3')(x)
    x = _L.GlobalAveragePooling2D(name='pool')(x)
    model = keras.Model(image, _L.Dense(4, name='head')(x), name='residual')
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if len(variable.shape) == 1:  # BatchNormalization vectors, biases
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))
    return model


def _images(count=4, seed=1):
    return np.random.default_rng(seed).random((count, 8, 8, 3), np.float32)


def _assert_same(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert np.abs(got - expected).max() <= 1e-5 * np.ptp(expected)


def _channel_masks(model):
    return {w.name: w.channel_state.mask.numpy() for w in find_wrappers(model)
            if w.channel_state is not None}


def test_prune_wraps_every_slice_of_a_removable_channel():
    pruned = tf_prune.prune(_residual(), ONE_SHOT)
    channels = {w.name: (w.channels['weights'], w.channels['group_size'])
                for w in find_wrappers(pruned)}
    # c1 and c2 are added: one group of 8, owned by c1; c3 makes 16; the
    # head makes the model output, whose channels cannot go.
    assert channels == {
        'c1': ({'kernel': 3, 'bias': 0}, 8),
        'bn1': ({'gamma': 0, 'beta': 0}, 0),
        'c2': ({'kernel': 3, 'bias': 0}, 0),
        'bn2': ({'gamma': 0, 'beta': 0}, 0),
        'c3': ({'kernel': 3, 'bias': 0}, 16)}
    masks = {p.mask_name for w in find_wrappers(pruned)
             for p in w.pruned_weights}
    assert {'c1/kernel/mask', 'bn1/gamma/mask', 'c3/bias/mask'} <= masks


def test_a_one_shot_update_masks_exactly_half_of_each_group_and_shrinks_to_the_same():
    model = _residual()
    pruned = tf_prune.prune(model, ONE_SHOT, one_shot=True)
    masks = _channel_masks(pruned)
    assert {name: (mask.size, int(mask.sum())) for name, mask in masks.items()
            } == {'c1': (8, 4), 'c3': (16, 8)}
    # The lowest L1 filter norms go: c1's group sums c1's and c2's filters.
    norms = (np.abs(model.get_layer('c1').kernel.numpy()).sum((0, 1, 2))
             + np.abs(model.get_layer('c2').kernel.numpy()).sum((0, 1, 2)))
    np.testing.assert_array_equal(masks['c1'], norms >= np.sort(norms)[4])
    # Every masked slice follows its group's mask.
    c2 = pruned.get_layer('c2')
    np.testing.assert_array_equal(
        c2.pruned_weights[0].mask.numpy()[0, 0, 0], masks['c1'])
    shrunk = tf_prune.shrink(pruned)
    assert not find_wrappers(shrunk)
    assert shrunk.get_layer('c1').kernel.shape == (3, 3, 3, 4)
    assert shrunk.get_layer('c3').kernel.shape == (1, 1, 4, 8)
    assert shrunk.get_layer('head').kernel.shape == (8, 4)
    x = _images()
    _assert_same(shrunk(x, training=False), pruned(x, training=False))
    # Folding the masks gives the same zeroed model.
    _assert_same(tf_prune.strip_pruning(pruned)(x, training=False),
                 pruned(x, training=False))


def _concatenated(seed=0):
    """Two convolutions concatenated into one BatchNormalization, whose
    vectors hold the channels of both groups."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 3), name='image')
    a = _L.Conv2D(4, 3, padding='same', name='a')(image)
    b = _L.Conv2D(6, 3, padding='same', name='b')(image)
    x = _L.BatchNormalization(name='bn')(_L.Concatenate(name='cat')([a, b]))
    x = _L.Conv2D(6, 1, activation='relu', name='mix')(_L.ReLU(name='r')(x))
    x = _L.GlobalAveragePooling2D(name='pool')(x)
    return keras.Model(image, _L.Dense(3, name='head')(x), name='cat')


def test_a_one_shot_update_op_by_op_masks_as_the_compiled_update():
    model = _concatenated()
    one_shot = tf_prune.prune(model, ONE_SHOT, one_shot=True)
    compiled = tf_prune.prune(model, ONE_SHOT)
    tf_prune.Pruning(ONE_SHOT, compiled, sparsity=0.5).mask_update(0)
    for got, expected in zip(find_wrappers(one_shot), find_wrappers(compiled)):
        for p, q in zip(got.pruned_weights, expected.pruned_weights):
            np.testing.assert_array_equal(p.mask.numpy(), q.mask.numpy())
    masks = _channel_masks(one_shot)
    assert {name: int(mask.sum()) for name, mask in masks.items()} == {
        'a': 2, 'b': 3, 'mix': 3}
    # One gather of all group masks gives the BatchNormalization's slices.
    gamma = one_shot.get_layer('bn').pruned_weights[0]
    np.testing.assert_array_equal(gamma.mask.numpy(),
                                  np.concatenate([masks['a'], masks['b']]))
    # The costs read the same gathers: what shrinking removes.
    plan = tf_prune.Pruning(ONE_SHOT, one_shot).channel_plan
    parameters, macs = plan.removed_cost(
        [group.state.mask.value for group in plan.groups])
    shrunk = tf_prune.shrink(one_shot)
    assert (parameters, macs) == (
        model.count_params() - shrunk.count_params(),
        cost.macs(model) - cost.macs(shrunk))


def test_the_schedule_and_gate_decide_when_channels_go():
    spec = ('structure=channel,target_sparsity=0.5,pruning_frequency=2,'
            'sparsity_function_end_step=4')
    pruned = tf_prune.prune(_residual(), spec)
    pruning = tf_prune.Pruning(spec, pruned)
    assert isinstance(pruning, tf_prune.structured.ChannelPruning)
    kept = []
    for step in range(1, 7):
        pruning.conditional_mask_update(step)
        kept.append(int(_channel_masks(pruned)['c3'].sum()))
    # Updates at steps 2, 4, 6: s(2) = 0.5 * (1 - 0.5 ** 3) = 0.4375.
    assert kept == [16, 9, 9, 8, 8, 8]
    assert int(pruning.last_mask_update_step.numpy()) == 6
    assert float(pruning.model_sparsity.numpy()) == pytest.approx(12 / 24)


def test_weight_sparsity_map_scales_a_group_by_any_member_name():
    pruned = tf_prune.prune(
        _residual(), ONE_SHOT + ',weight_sparsity_map=[bn2/gamma:0.25]',
        one_shot=True)
    masks = _channel_masks(pruned)
    assert (int(masks['c1'].sum()), int(masks['c3'].sum())) == (6, 8)
    with pytest.raises(ValueError, match=(
            'different targets through c1/kernel, c2/kernel; its channels '
            'go together')):
        tf_prune.prune(_residual(), ONE_SHOT
                       + ',weight_sparsity_map=[c1/kernel:0.25,c2/kernel:0.75]')


def test_parameter_and_flop_summaries_are_what_the_shrunk_model_keeps(tmp_path):
    spec = ('name=channels,structure=channel,target_sparsity=0.5,'
            'pruning_frequency=1,sparsity_function_end_step=2')
    model = _residual()
    pruned = tf_prune.prune(model, spec)
    pruned.compile('sgd', 'mse')
    rng = np.random.default_rng(2)
    pruned.fit(_images(12), rng.random((12, 4)), batch_size=4, verbose=0,
               callbacks=[tf_prune.PruningCallback(spec, log_dir=str(tmp_path))])
    shrunk = tf_prune.shrink(pruned)
    log_dir = LogDir(tmp_path)
    (run,) = log_dir.runs

    def last(tag):
        (series,) = log_dir.chart_series(run, f'^{tag}$').values()
        return series[-1]

    assert last('channels_summaries/parameter_fraction') == (3, pytest.approx(
        shrunk.count_params() / model.count_params()))
    assert last('channels_summaries/flop_fraction')[1] == pytest.approx(
        cost.flops(shrunk) / cost.flops(model))
    assert last('channels_summaries/c3/channels/kept_fraction')[1] == 0.5
    assert last('channels_summaries/c1/channels/mask/sparsity')[1] == 0.5
    titles = [chart['title'] for chart in
              log_dir.layout()['category'][0]['chart']]
    assert 'Channels kept, per group' in titles


def test_a_channel_pruned_model_saves_loads_and_shrinks_the_same(tmp_path):
    pruned = tf_prune.prune(_residual(), ONE_SHOT, one_shot=True)
    path = tmp_path / 'pruned.keras'
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(_channel_masks(loaded)['c3'],
                                  _channel_masks(pruned)['c3'])
    x = _images()
    _assert_same(tf_prune.shrink(loaded)(x, training=False),
                 pruned(x, training=False))
    # The loaded model's controller picks up where the masks are.
    pruning = tf_prune.Pruning(ONE_SHOT, loaded)
    assert float(pruning.model_sparsity.numpy()) == pytest.approx(0.5)


def test_checkpoints_restore_channel_masks_and_thresholds(tmp_path):
    pruned = tf_prune.prune(_residual(), ONE_SHOT, one_shot=True)
    path = tf.train.Checkpoint(model=pruned).write(str(tmp_path / 'ckpt'))
    fresh = tf_prune.prune(_residual(), ONE_SHOT)
    assert _channel_masks(fresh)['c3'].all()
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    np.testing.assert_array_equal(_channel_masks(fresh)['c1'],
                                  _channel_masks(pruned)['c1'])
    thresholds = [t.numpy() for t in tf_prune.Pruning(ONE_SHOT, fresh)
                  .get_thresholds()]
    assert thresholds == [t.numpy() for t in tf_prune.Pruning(
        ONE_SHOT, pruned).get_thresholds()]
    assert all(t > 0 for t in thresholds)


def test_a_training_directory_resumes_with_its_channel_masks(tmp_path):
    spec = ('structure=channel,target_sparsity=0.5,pruning_frequency=1,'
            'sparsity_function_end_step=4')
    rng = np.random.default_rng(4)
    x, y = _images(8), rng.random((8, 4))

    def train(epochs):
        pruned = tf_prune.prune(_residual(), spec)
        pruned.compile('sgd', 'mse')
        pruned.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[
            tf_prune.PruningCallback(spec),
            tf_prune.TrainingDirectory(str(tmp_path), spec)])
        return pruned

    first = train(1)  # steps 1-2
    loaded = tf_prune.checkpoints.load_model(str(tmp_path))
    assert _channel_masks(loaded).keys() == {'c1', 'c3'}
    for name, mask in _channel_masks(first).items():
        np.testing.assert_array_equal(_channel_masks(loaded)[name], mask)
    assert int(_channel_masks(first)['c3'].sum()) == 9  # s(2) = 0.4375
    second = train(1)  # one more epoch from the restored step 2
    assert int(second.optimizer.iterations.numpy()) == 4
    assert {n: int(m.sum()) for n, m in _channel_masks(second).items()} == {
        'c1': 4, 'c3': 8}


def test_taylor_accumulates_gradient_times_weight_while_training():
    spec = ('structure=channel,channel_criterion=taylor,target_sparsity=0.5,'
            'pruning_frequency=3,sparsity_function_end_step=1')
    pruned = tf_prune.prune(_residual(), spec)
    pruned.compile('sgd', 'mse')
    rng = np.random.default_rng(3)
    x, y = _images(8), rng.random((8, 4))
    pruned.fit(x, y, batch_size=4, verbose=0, epochs=1)  # 2 steps, no update
    kernel, bias = pruned.get_layer('c3').pruned_weights
    assert (kernel.taylor.numpy() > 0).all()
    # One step by hand: each slice accumulates the square of its sum of
    # gradient times weight; the channel's score sums its slices'.
    for p in (kernel, bias):
        p.taylor.assign(np.zeros(16, np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((pruned(x[:4], training=True) - y[:4]) ** 2)
    gradients = tape.gradient(loss, [kernel.weight, bias.weight])
    terms = [(g.numpy() * p.weight.numpy()).reshape(-1, 16).sum(0) ** 2
             for g, p in zip(gradients, (kernel, bias))]
    np.testing.assert_allclose(kernel.taylor.numpy(), terms[0], rtol=1e-4)
    np.testing.assert_allclose(bias.taylor.numpy(), terms[1], rtol=1e-4)
    scores = terms[0] + terms[1]
    pruning = tf_prune.Pruning(spec, pruned)
    pruning.mask_update(3)
    mask = _channel_masks(pruned)['c3']
    assert mask.sum() == 8 and not kernel.taylor.numpy().any()  # reset
    np.testing.assert_array_equal(mask, scores >= np.sort(scores)[8])


def test_bn_l1_penalty_adds_the_masked_scales_as_a_loss():
    spec = ONE_SHOT + ',bn_l1_penalty=0.01'
    pruned = tf_prune.prune(_residual(), spec, one_shot=True)
    pruned(_images(), training=True)
    gammas = sum(np.abs(pruned.get_layer(name).pruned_weights[0].mask.numpy()
                        * pruned.get_layer(name).layer.gamma.numpy()).sum()
                 for name in ('bn1', 'bn2'))
    assert sum(float(loss) for loss in pruned.losses) == pytest.approx(
        0.01 * gammas, rel=1e-5)
    pruned(_images(), training=False)
    assert not pruned.losses


def test_bn_scale_ranks_by_gamma_and_leaves_groups_without_one_whole(caplog):
    model = _residual()
    pruned = tf_prune.prune(model, ONE_SHOT + ',channel_criterion=bn_scale',
                            one_shot=True)
    masks = _channel_masks(pruned)
    gammas = (np.abs(model.get_layer('bn1').gamma.numpy())
              + np.abs(model.get_layer('bn2').gamma.numpy()))
    np.testing.assert_array_equal(masks['c1'], gammas >= np.sort(gammas)[4])
    assert masks['c3'].all()  # c3 has no BatchNormalization


def test_a_producer_of_part_of_a_group_keeps_one_channel():
    keras.utils.set_random_seed(0)
    image = keras.Input((6, 6, 2))
    a = _L.Conv2D(4, 1, name='a')(image)
    b = _L.Conv2D(4, 1, name='b')(image)
    gate = _L.Conv2D(8, 1, activation='sigmoid', name='gate')(image)
    x = _L.Multiply()([_L.Concatenate()([a, b]), gate])
    x = _L.Conv2D(3, 1, name='mix')(x)
    model = keras.Model(image, _L.GlobalAveragePooling2D()(x))
    # a's filters are the weakest: 0.5 of the 8 channels would be all of a's.
    model.get_layer('a').kernel.assign(
        model.get_layer('a').kernel.numpy() * 1e-3)
    model.get_layer('gate').kernel.assign(
        np.abs(model.get_layer('gate').kernel.numpy()) * 0 + 0.1)
    pruned = tf_prune.prune(model, ONE_SHOT, one_shot=True)
    (mask,) = _channel_masks(pruned).values()
    assert mask[:4].sum() == 1 and mask.sum() == 5
    x = np.random.default_rng(0).random((2, 6, 6, 2), np.float32)
    _assert_same(tf_prune.shrink(pruned)(x), pruned(x))


def test_bad_input_is_refused_in_one_line():
    lonely = keras.Sequential(
        [keras.Input((4, 4, 1)), _L.Conv2D(2, 3, name='conv')], name='lonely')
    with pytest.raises(ValueError, match=(
            r"^lonely has no channel that can be removed \(1 of 1 channel "
            r"groups have unprunable channels: group 0 \(conv\) 2/2: model "
            r"output .*\); use structure=weight")):
        tf_prune.prune(lonely, ONE_SHOT)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name='sub')
            self.conv = _L.Conv2D(2, 1)

        def call(self, inputs):
            return self.conv(inputs)

    with pytest.raises(ValueError, match=(
            "follows the graph of Sequential and Functional models, and 'sub' "
            "is a Subclassed; rebuild it as a Functional model")):
        tf_prune.prune(Subclassed(), ONE_SHOT)
    with pytest.raises(ValueError, match='taylor scores channels by the '
                       'gradients of training steps'):
        tf_prune.prune(_residual(), ONE_SHOT + ',channel_criterion=taylor',
                       one_shot=True)
    channel_pruned = tf_prune.prune(_residual(), ONE_SHOT)
    with pytest.raises(ValueError, match='masks channels .* give Pruning the '
                       'hparams it was pruned with'):
        tf_prune.Pruning('target_sparsity=0.5', channel_pruned)
    with pytest.raises(ValueError, match='pruned with another criterion; '
                       'prune it with channel_criterion=taylor'):
        tf_prune.Pruning(ONE_SHOT + ',channel_criterion=taylor',
                         channel_pruned)
    weight_pruned = tf_prune.prune(_residual(), 'target_sparsity=0.5')
    with pytest.raises(ValueError, match='mask weights .* give Pruning the '
                       'hparams it was pruned with'):
        tf_prune.Pruning(ONE_SHOT, weight_pruned)
    with pytest.raises(ValueError, match='mask weights, not channels: '
                       r'tf_prune.strip_pruning\(model\) folds weight masks'):
        tf_prune.shrink(weight_pruned)
    with pytest.raises(ValueError, match='residual has no channel masks; '
                       'prune it with structure=channel first'):
        tf_prune.shrink(_residual())


def test_the_wrapper_config_round_trips_its_channels():
    pruned = tf_prune.prune(_residual(), ONE_SHOT)
    wrapper = pruned.get_layer('c1')
    clone = tf_prune.PruneWrapper.from_config(keras.saving.serialize_keras_object(
        wrapper)['config'])
    assert clone.channels == wrapper.channels
    with pytest.raises(ValueError, match='must name the weights to mask'):
        tf_prune.PruneWrapper(_L.Dense(2), channels={'group_size': 2})

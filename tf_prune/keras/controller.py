"""`Pruning`: contrib's pruning controller for a Keras model.

The controller finds the model's `PruneWrapper`s and updates all their masks
in one compiled call, at contrib's steps (SEMANTICS sections 2 and 3):
`conditional_mask_update(step)` after each training step, as contrib's
`conditional_mask_update_op` ran after each train op.
"""

import keras
import tensorflow as tf

from tf_prune.core import hparams as hparams_lib
from tf_prune.core import masking
from tf_prune.core import schedule
from tf_prune.keras import structures
from tf_prune.keras import summaries
from tf_prune.keras.wrapper import find_wrappers


def _as_step(step):
    """The step as an int64 tensor, so one trace serves every step."""
    return tf.cast(tf.convert_to_tensor(step), tf.int64)


def _host_int(value):
    """An eager int, tensor or variable (mirrored ones too) as a Python int."""
    if isinstance(value, int):
        return value
    return int(tf.convert_to_tensor(value).numpy())


def _is_schedule_function(sparsity):
    """Whether a `sparsity=` override is a callable of the step."""
    return callable(sparsity) and not isinstance(
        sparsity, (tf.Variable, keras.Variable))


def _override_message(owner):
    return (f'{owner} argument sparsity must be in [0, 1) (the global '
            f'target sparsity), got')


def check_sparsity_override(sparsity, owner='Pruning'):
    """Raises unless a `sparsity=` override holds a value in [0, 1).

    None and callables pass (a callable's values are checked at each
    update); a number, NumPy value, tensor or variable is read now.

    Args:
      sparsity: the override.
      owner: the class taking it, for the message.

    Raises:
      ValueError: the value is NaN, infinite, outside [0, 1) or not a
        scalar.
    """
    if sparsity is None or _is_schedule_function(sparsity):
        return
    if not tf.executing_eagerly():
        return  # a graph tensor: checked when the update runs
    value = tf.convert_to_tensor(sparsity).numpy()
    if value.shape != ():
        raise ValueError(f'{owner} argument sparsity must be a scalar, got '
                         f'shape {value.shape}')
    if not 0.0 <= value < 1.0:
        raise ValueError(f'{_override_message(owner)} {float(value)}')


def check_override_applies(hparams, sparsity, owner='Pruning'):
    """Raises for a `sparsity=` override that the hparams' masks ignore.

    With `nm_sparsity`, every update keeps N of every M weights whatever
    the sparsity, so an override would be silently unused.

    Args:
      hparams: the validated `PruningHParams`.
      sparsity: the override, or None.
      owner: the class taking it, for the message.

    Raises:
      ValueError: an override together with `nm_sparsity`.
    """
    if sparsity is not None and hparams.nm_sparsity:
        raise ValueError(
            f'{owner} argument sparsity overrides the sparsity schedule, '
            f'which nm_sparsity={hparams.nm_sparsity} does not use (each '
            f'update keeps N of every M weights); drop sparsity or '
            f'nm_sparsity')


def _checked_override(sparsity):
    """A `sparsity=` override's value, float32, checked to be in [0, 1)."""
    if tf.executing_eagerly():
        check_sparsity_override(sparsity)
        return sparsity
    in_range = tf.logical_and(sparsity >= 0.0, sparsity < 1.0)
    with tf.control_dependencies([tf.debugging.Assert(
            in_range, [_override_message('Pruning'), sparsity])]):
        return tf.identity(sparsity)


def _compiled(function, jit_compile=False):
    """`tf.function` without AutoGraph: the update's control flow is
    written with `tf.cond`, and converting its code would cost seconds at
    the first trace of each process."""
    return tf.function(function, jit_compile=jit_compile, autograph=False)


def _change_estimate(weight, old_weight, old_old_weight, second_order):
    """The weight's first or second difference, normalized to unit L2 norm."""
    if second_order:
        change = weight - 2.0 * old_weight + old_old_weight
    else:
        change = weight - old_weight
    norm = tf.norm(change)
    return tf.math.divide_no_nan(change, norm)


class Pruning:
    """contrib's `Pruning` object for a Keras model.

    Args:
      hparams: a `PruningHParams`, or a spec string such as
        `'target_sparsity=0.9,pruning_frequency=100'`; validated here with
        contrib's messages.
      model: a model (or layer) holding `PruneWrapper`s, built; see
        `tf_prune.prune`.
      sparsity: overrides the schedule, as contrib's argument did: a scalar
        variable (read at each update) or a callable taking the step and
        returning the global sparsity, in [0, 1). `weight_sparsity_map`
        still scales it. A value out of range is a ValueError here, or an
        InvalidArgumentError from the update that reads it. Not with
        `nm_sparsity`.

    With `structure=channel` in the hparams, `Pruning(...)` returns the
    channel controller (`tf_prune.structured.ChannelPruning`), which ranks
    and masks whole channels on the same schedule.

    With `nm_sparsity=N:M`, each update (on contrib's gate, unchanged) sets
    every pruned weight's mask to its N:M mask (`update_mask`'s `n_of_m`)
    and leaves its threshold as it was. The schedule is still computed:
    `global_sparsity`, `get_target_sparsities`, `mask_update`'s result and
    the `sparsity` summary are its values, which no mask follows;
    `model_sparsity`, `get_weight_sparsity` and the masks' summaries count
    the masks' zeros.

    Raises:
      ValueError: the hparams do not validate, `sparsity` holds a value
        outside [0, 1) or is given with `nm_sparsity`, a
        `weight_sparsity_map` or `block_dims_map` entry matches a weight
        twice, the model has no built `PruneWrapper`, or `nm_sparsity` is
        set and a pruned weight has rank below 2.
    """

    # Whether `_update_once` runs the update op by op. Not for weight masks:
    # run op by op, masking's XLA kernels would be traced again for each
    # weight shape, with TensorFlow's retracing warnings.
    _update_once_op_by_op = False

    def __new__(cls, hparams, model, sparsity=None):
        del model, sparsity  # for __init__
        if cls is Pruning:
            structure = hparams_lib.as_hparams(hparams).structure
            if structure != 'weight':
                cls = structures.get(structure).controller
        return super().__new__(cls)

    def __init__(self, hparams, model, sparsity=None):
        # A copy: the compiled update keeps the values it was traced with.
        self._hparams = hparams_lib.PruningHParams(
            **hparams_lib.as_hparams(hparams).values())
        check_sparsity_override(sparsity)
        check_override_applies(self._hparams, sparsity)
        self._model = model
        self._wrappers = find_wrappers(model)
        if not self._wrappers:
            raise ValueError(
                f'{model.name} has no PruneWrapper layers; wrap its layers '
                f'with tf_prune.prune(model, hparams) first')
        unbuilt = [w.name for w in self._wrappers if not w.built]
        if unbuilt:
            raise ValueError(
                f'Layers {unbuilt} are not built yet; build the model (give '
                f'it an Input or call it on data) before creating Pruning')
        self._plan_updates()
        self._sparsity = sparsity
        for wrapper in self._wrappers:
            wrapper.controlled = True
        jit = self._hparams.use_tpu
        self._update_masks_fn = _compiled(self._update_masks, jit_compile=jit)
        self._track_weights_fn = _compiled(self._track_weights,
                                           jit_compile=jit)
        # Never compiled: XLA would drop the checks.
        self._check_inputs_fn = _compiled(self._check_inputs)
        self._conditional_fns = {}
        self._model_sparsity = tf.Variable(
            self._zero_fraction(), trainable=False, name='model_sparsity')

    def _plan_updates(self):
        """Resolves, once, what each update computes from the wrappers."""
        # A weight pruned by two layers is updated once; its other masks copy.
        groups = {}
        for wrapper in self._wrappers:
            if wrapper.self_updating:
                raise ValueError(
                    f'{wrapper.name} was pruned with tf_prune.tfmot and '
                    f'updates its own masks (train it with the '
                    f'UpdatePruningStep callback); tf_prune.Pruning controls '
                    f'models pruned with tf_prune.prune')
            if wrapper.channels is not None:
                raise ValueError(
                    f'{wrapper.name} masks channels (the model was pruned '
                    f'with structure=channel); give Pruning the hparams it '
                    f'was pruned with')
            for p in wrapper.pruned_weights:
                groups.setdefault(id(p.weight), []).append(p)
        self._groups = list(groups.values())
        self._check_n_of_m_ranks()
        # Each weight's target scale and mask arguments, resolved once;
        # contrib's error for a weight matched twice comes now rather than
        # at the first update.
        self._plans = [schedule.plan_weight(self._hparams, group[0].name)
                       for group in self._groups]

    def _check_n_of_m_ranks(self):
        """Raises for a weight N:M masks cannot group (no input-channel
        axis): now, rather than at the first update."""
        if not self._hparams.nm_sparsity:
            return
        for group in self._groups:
            if len(group[0].weight.shape) < 2:
                raise ValueError(
                    f'nm_sparsity={self._hparams.nm_sparsity} groups weights '
                    f'along their input-channel axis (the second to last), '
                    f'which weight {group[0].name} of shape '
                    f'{tuple(group[0].weight.shape)} lacks; leave it out of '
                    f'get_prunable_weights() or drop nm_sparsity')

    @property
    def model(self):
        """The model (or layer) whose masks this controller updates."""
        return self._model

    @property
    def hparams(self):
        """The `PruningHParams` in use (a copy of the ones given)."""
        return self._hparams

    @property
    def last_mask_update_step(self):
        """The int32 variable holding the step of the last mask update."""
        return self._wrappers[0].last_mask_update_step

    @property
    def model_sparsity(self):
        """Fraction of zeros over all masks, as of the last update or recount."""
        return self._model_sparsity

    def recount_sparsity(self):
        """Recounts `model_sparsity` from the masks as they are now.

        For masks changed outside an update, as by restoring a checkpoint.

        Returns:
          The new value, a float32 scalar tensor.
        """
        return self._model_sparsity.assign(self._zero_fraction())

    def _pruned(self):
        return [group[0] for group in self._groups]

    def get_masks(self):
        """The mask variables, one per pruned weight."""
        return [p.mask for p in self._pruned()]

    def get_thresholds(self):
        """The threshold variables, one per pruned weight."""
        return [p.threshold for p in self._pruned()]

    def get_weights(self):
        """The pruned weight variables."""
        return [p.weight for p in self._pruned()]

    def get_weight_names(self):
        """`<layer>/<weight>` of each pruned weight, as patterns see them."""
        return [p.name for p in self._pruned()]

    def get_target_sparsities(self, step):
        """Each pruned weight's target at `step`: the schedule (or override)
        scaled by `weight_sparsity_map`, float32 scalar tensors."""
        sparsity = self.global_sparsity(_as_step(step))
        return [plan.sparsity(sparsity) for plan in self._plans]

    def get_weight_sparsity(self):
        """The fraction of zeros in each mask, float32 scalar tensors."""
        return [tf.math.zero_fraction(p.mask.value) for p in self._pruned()]

    def global_sparsity(self, step):
        """The global target sparsity at `step`: the schedule or override.

        Raises:
          ValueError: eagerly, the override reads outside [0, 1); in a
            graph this is an InvalidArgumentError when it runs.
        """
        if self._sparsity is None:
            return schedule.scheduled_sparsity(self._hparams, step)
        if _is_schedule_function(self._sparsity):
            sparsity = self._sparsity(step)
        else:
            sparsity = tf.convert_to_tensor(self._sparsity)
        return _checked_override(tf.cast(sparsity, tf.float32))

    def _zero_fraction(self):
        zeros = tf.add_n([tf.size(p.mask.value, tf.float32)
                          - tf.reduce_sum(tf.cast(p.mask.value, tf.float32))
                          for p in self._pruned()])
        total = sum(p.mask.shape.num_elements() for p in self._pruned())
        return zeros / float(max(total, 1))

    def _scores(self, p):
        """What a weight is ranked by: |w|, or |w| times its change estimate."""
        option = self._hparams.prune_option
        if option == 'weight':
            return p.weight.value
        gradient = p.history[0].value
        weight = p.weight.value
        if option == 'first_order_gradient':
            return weight * gradient
        return weight * weight * gradient

    def _update_masks(self, step):
        sparsity = self.global_sparsity(step)
        updates = []
        for group, plan in zip(self._groups, self._plans):
            first = group[0]
            threshold, mask = masking.update_mask(
                self._scores(first), plan.sparsity(sparsity),
                first.threshold.value, **plan.mask_arguments)
            updates.append((group, threshold, tf.cast(mask, first.mask.dtype)))
        # The masks depend on update_mask's checks (finite weights, a
        # sparsity in range): when one fails, nothing is assigned, not even
        # the step, and the update stays due.
        with tf.control_dependencies([mask for _, _, mask in updates]):
            for group, threshold, mask in updates:
                for p in group:
                    p.threshold.assign(tf.cast(threshold, p.threshold.dtype))
                    p.mask.assign(mask)
            step = tf.cast(step, tf.int32)
            for wrapper in self._wrappers:
                wrapper.last_mask_update_step.assign(step)
        self._model_sparsity.assign(self._zero_fraction())
        return sparsity

    def _track_weights(self):
        """Steps the weight-change estimates of the gradient prune options."""
        decay = self._hparams.gradient_decay_rate
        second_order = self._hparams.prune_option == 'second_order_gradient'
        for group in self._groups:
            gradient, old_weight, old_old_weight = group[0].history
            weight = group[0].weight.value
            change = _change_estimate(weight, old_weight.value,
                                      old_old_weight.value, second_order)
            gradient.assign(decay * gradient.value + (1.0 - decay) * change)
            old_old_weight.assign(old_weight.value)
            old_weight.assign(weight)

    def _check_inputs(self, step):
        """update_mask's runtime checks of the update's inputs (finite
        weights, an override in range), which XLA would leave out."""
        checks = [masking.check_finite(self._scores(group[0]), group[0].name)
                  for group in self._groups]
        if self._sparsity is not None:
            checks.append(self.global_sparsity(step))
        return checks

    def _run_update(self, step):
        """The compiled update; with use_tpu (XLA), its checks run first."""
        if not self._hparams.use_tpu:
            return self._update_masks_fn(step)
        with tf.control_dependencies(self._check_inputs_fn(step)):
            return self._update_masks_fn(step)

    def mask_update(self, step):
        """Updates every mask now and sets `last_mask_update_step` to `step`.

        Args:
          step: the global step, an int, integer tensor or variable.

        Returns:
          The global sparsity used, a float32 scalar tensor.

        Raises:
          tf.errors.InvalidArgumentError: a pruned weight holds a NaN or an
            infinity (the message names it), or the `sparsity` override
            reads outside [0, 1).
        """
        return self._run_update(_as_step(step))

    def _update_once(self, step):
        """`mask_update`, for a controller that updates once (as
        `prune(..., one_shot=True)`'s).

        The channel controller runs the update's ops one by one rather than
        compiling them, which would cost far more than that one run; with
        use_tpu it compiles them too (XLA).

        Args:
          step: the global step, an int, integer tensor or variable.

        Returns:
          The global sparsity used, a float32 scalar tensor.

        Raises:
          tf.errors.InvalidArgumentError: as `mask_update`.
        """
        if self._update_once_op_by_op and not self._hparams.use_tpu:
            return self._update_masks(_as_step(step))
        return self.mask_update(step)

    def _conditional_update(self, step, writer):
        if self._hparams.prune_option != 'weight':
            self._track_weights_fn()
        due = schedule.mask_update_due(self._hparams, step,
                                       self.last_mask_update_step.value)

        def update():
            self._run_update(step)
            return tf.constant(True)

        updated = tf.cond(due, update, lambda: tf.constant(False))
        if writer is not None:
            # Written here, not in the branch, whose name scope would prefix
            # the tags; they read the variables after the update.
            with writer.as_default(), tf.summary.record_if(updated):
                self._write_summaries(step, self.global_sparsity(step),
                                      histograms=True)
        return updated

    def conditional_mask_update(self, step, summary_writer=None):
        """contrib's gated update: updates the masks when they are due.

        Due at `step` when `begin_pruning_step <= step <= end_pruning_step`
        (or `end_pruning_step` is -1) and `last_mask_update_step +
        pruning_frequency <= step`. In contrib's loop the step is
        incremented by the training step first and this runs with the new
        step; `PruningCallback` passes `optimizer.iterations` after each
        step. All masks update in one compiled call (XLA with `use_tpu`).

        Args:
          step: the global step, an int, integer tensor or variable.
          summary_writer: a `tf.summary` writer; when given, contrib's
            summaries and weight histograms are written to it at each update,
            and the first call with it writes the "Pruning" custom-scalars
            layout (one category of four charts gathering these tags) and,
            eagerly, TensorBoard's run-start marker at `step`, so a resumed
            run's curves replace what a killed run wrote past its last
            checkpoint.

        Returns:
          A bool scalar tensor: whether the masks were updated.

        Raises:
          tf.errors.InvalidArgumentError: as `mask_update`, when due.
        """
        key = id(summary_writer)
        if key not in self._conditional_fns:
            if summary_writer is not None:
                with summary_writer.as_default():
                    summaries.write_dashboard_layout(self._hparams)
                    if tf.executing_eagerly():
                        # The first step this writer records, fresh or
                        # resumed: TensorBoard drops what a killed run
                        # wrote from there on.
                        summaries.write_run_start(_host_int(step))
            function = _compiled(
                lambda s: self._conditional_update(s, summary_writer))
            # Traced on the first call, not at the first step an update is
            # due, which the host-side gate below would otherwise make it.
            function.get_concrete_function(tf.TensorSpec([], tf.int64))
            self._conditional_fns[key] = function
        if (tf.executing_eagerly() and self._hparams.prune_option == 'weight'
                and not schedule.mask_update_due(
                    self._hparams, _host_int(step),
                    _host_int(self.last_mask_update_step))):
            # Decided on the host: most steps then cost two variable reads,
            # not a call of the compiled update.
            return tf.constant(False)
        return self._conditional_fns[key](_as_step(step))

    def _write_summaries(self, step, sparsity, histograms):
        summaries.write_pruning_summaries(
            self._hparams, step, sparsity, self._zero_fraction(),
            self.last_mask_update_step.value,
            self._pruned(), histograms=histograms)

    def add_pruning_summaries(self, step, histograms=False):
        """Writes contrib's summaries of the current state.

        Writes to the default summary writer (`with writer.as_default():`).

        Args:
          step: the step to record them at.
          histograms: also write a histogram of each masked weight.
        """
        step = _as_step(step)
        self._write_summaries(step, self.global_sparsity(step), histograms)

    def add_final_summaries(self, step, histograms=True):
        """Writes the state training ended in, unless the update at `step` did.

        For the end of training: an update on the last step has written
        these summaries already; without one, the last mask update's
        summaries would not show where training ended.

        Args:
          step: the last step, an int or an integer tensor or variable.
          histograms: also write a histogram of each masked weight.
        """
        if _host_int(self.last_mask_update_step) != _host_int(step):
            self.add_pruning_summaries(step, histograms)

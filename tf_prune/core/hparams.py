"""Pruning hyperparameters with the grammar, defaults and errors of TF1 contrib.

`tf.contrib.model_pruning` read its configuration from a spec string such as
`name=cifar10_pruning,target_sparsity=0.9,weight_sparsity_map=[conv1:0.9]`,
parsed by TF1's `HParams.parse`. `PruningHParams` reproduces that grammar,
contrib's 17 hyperparameters with their defaults and types, and contrib's
validation messages, plus tf_prune's documented extensions.
"""

import difflib
import numbers
import re

import numpy as np

# (name, default) in contrib's order; the type of each hparam is the type of
# its default, as in TF1's HParams.
_CONTRIB_DEFAULTS = (
    ('name', 'model_pruning'),
    ('begin_pruning_step', 0),
    ('end_pruning_step', -1),
    ('weight_sparsity_map', ['']),
    ('block_dims_map', ['']),
    ('threshold_decay', 0.0),
    ('pruning_frequency', 10),
    ('nbins', 256),
    ('block_height', 1),
    ('block_width', 1),
    ('block_pooling_function', 'AVG'),
    ('initial_sparsity', 0.0),
    ('target_sparsity', 0.5),
    ('sparsity_function_begin_step', 0),
    ('sparsity_function_end_step', 100),
    ('sparsity_function_exponent', 3.0),
    ('use_tpu', False),
)

# tf_prune's extensions (documented in the README).
_EXTENSION_DEFAULTS = (
    ('threshold_method', 'exact'),
    ('prune_option', 'weight'),
    ('gradient_decay_rate', 0.99),
    ('structure', 'weight'),
    ('channel_criterion', 'l1'),
    ('bn_l1_penalty', 0.0),
    ('nm_sparsity', ''),
)

_DEFAULTS = dict(_CONTRIB_DEFAULTS + _EXTENSION_DEFAULTS)

THRESHOLD_METHODS = ('exact', 'histogram')
PRUNE_OPTIONS = ('weight', 'first_order_gradient', 'second_order_gradient')
POOLING_FUNCTIONS = ('AVG', 'MAX')
STRUCTURES = ('weight', 'channel')
CHANNEL_CRITERIA = ('l1', 'l2', 'bn_scale', 'taylor')
# `N:M`, N kept of every M: two unsigned integers, nothing else.
_N_OF_M = re.compile(r'([0-9]+):([0-9]+)')

# contrib cast the global step to int32, and the schedule and the gate
# compute with it on tensors: every step hparam must fit.
INT32_MAX = 2**31 - 1
# The histogram method counts bins in float32, exact up to 2**24.
MAX_NBINS = 2**24
# The schedule raises to the exponent in float32, whose kernels flush
# denormals to zero: the exponent must be a normal float32.
_FLOAT32_MIN_NORMAL = float(np.finfo(np.float32).tiny)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_STEP_HPARAMS = ('begin_pruning_step', 'sparsity_function_begin_step',
                 'sparsity_function_end_step', 'pruning_frequency')

# One clause of TF1's HParams grammar: `name=value`, `name=[v1,v2]` or
# `name[index]=value`, followed by the end of the string or a comma.
_CLAUSE = re.compile(r"""
  (?P<name>[a-zA-Z][\w\.]*)
  (\[\s*(?P<index>\d+)\s*\])?
  \s*=\s*
  ((?P<val>[^,\[]*) | \[(?P<vals>[^\]]*)\])
  ($|,\s*)""", re.VERBOSE)


def _element_type(name):
    default = _DEFAULTS[name]
    return type(default[0]) if isinstance(default, list) else type(default)


def _is_list(name):
    return isinstance(_DEFAULTS[name], list)


def _unknown_name_error(name):
    message = f'Unknown hyperparameter {name!r}'
    close = difflib.get_close_matches(name, list(_DEFAULTS), n=1)
    if close:
        message += f'; did you mean {close[0]!r}?'
    else:
        message += f'; known ones are: {", ".join(_DEFAULTS)}'
    return ValueError(message)


def _parse_scalar(name, text, spec):
    """Converts one value's text to the hparam's type, as TF1 did."""
    element_type = _element_type(name)
    try:
        if element_type is bool:
            if text in ('true', 'True'):
                return True
            if text in ('false', 'False'):
                return False
            return bool(int(text))
        return element_type(text)
    except ValueError:
        raise ValueError(
            f"Could not parse hparam '{name}' of type "
            f"'{element_type.__name__}' with value '{text}' in {spec}"
        ) from None


def _cast(name, value):
    """TF1's `_cast_to_type_if_compatible`: the checks of an assignment."""
    element_type = _element_type(name)
    if type(value) is element_type:
        return value
    fail = ValueError(
        f"Could not cast hparam '{name}' of type '{element_type}' "
        f'from value {value!r}')
    if issubclass(element_type, str) and not isinstance(value, str):
        raise fail
    if issubclass(element_type, bool) != isinstance(value, bool):
        raise fail
    if (issubclass(element_type, numbers.Integral)
            and not isinstance(value, numbers.Integral)):
        raise fail
    if (issubclass(element_type, numbers.Number)
            and not isinstance(value, numbers.Number)):
        raise fail
    return element_type(value)


def _checked_value(name, value):
    """Type-checks `value` for hparam `name` (a list for list hparams)."""
    if name not in _DEFAULTS:
        raise _unknown_name_error(name)
    if isinstance(value, (list, tuple)):
        if not _is_list(name):
            raise ValueError(
                'Must not pass a list for single-valued parameter: %s' % name)
        return [_cast(name, v) for v in value]
    if _is_list(name):
        raise ValueError(
            'Must pass a list for multi-valued parameter: %s.' % name)
    return _cast(name, value)


def _parse_spec(spec):
    """Parses a spec string into {name: value} with TF1's grammar and errors."""
    if not isinstance(spec, str):
        raise ValueError(
            f'A pruning hparams spec must be a string, got {type(spec).__name__}')
    parsed = {}
    pos = 0
    while pos < len(spec):
        match = _CLAUSE.match(spec, pos)
        if not match:
            raise ValueError('Malformed hyperparameter value: %s' % spec[pos:])
        pos = match.end()
        name = match.group('name')
        if name not in _DEFAULTS:
            raise _unknown_name_error(name)
        if match.group('index') is not None:
            # TF1 accepted `name[i]=v` only for list hparams of other
            # objects; on every pruning hparam it ends in a type error.
            key = f"{name}[{match.group('index')}]"
            raise ValueError(
                f"Indexed assignment {key} is not supported for hparam "
                f"'{name}'; write {name}=[...] for a list hparam")
        if name in parsed:
            raise ValueError(
                "Multiple assignments to variable '%s' in %s" % (name, spec))
        if match.group('val') is not None:
            value = _parse_scalar(name, match.group('val'), spec)
        else:
            elements = [e for e in re.split('[ ,]', match.group('vals')) if e]
            value = [_parse_scalar(name, e, spec) for e in elements]
        parsed[name] = _checked_value(name, value)
    return parsed


def format_value(value):
    if isinstance(value, list):
        return '[' + ','.join(format_value(v) for v in value) + ']'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _split_entry(hparam, entry, what):
    """Splits a `regex:value` map entry, with contrib's unpacking errors."""
    try:
        pattern, value = entry.split(':')
    except ValueError as e:
        raise ValueError(
            f'{hparam} entry {entry!r} is not {what} ({e})') from None
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f'{hparam} entry {entry!r} has a bad regex {pattern!r}: '
            f'error: {e}') from None
    # Python's compiler overflows on a repeat count above 2**32 - 1 and
    # recurses once per nesting level.
    except (OverflowError, RecursionError) as e:
        raise ValueError(
            f'{hparam} entry {entry!r} has a regex {pattern!r} Python cannot '
            f'compile ({type(e).__name__}: {e}); use smaller repeat counts '
            f'and fewer nested groups') from None
    return pattern, value


def parse_weight_sparsity_map(entries):
    """Returns [(regex, sparsity)] from `weight_sparsity_map` entries.

    Args:
      entries: the hparam's list of `regex:sparsity` strings (empty strings
        are skipped, as contrib did).

    Returns:
      A list of (compiled regex, float sparsity) pairs.

    Raises:
      ValueError: an entry is not `regex:sparsity`, its regex does not
        compile, or its sparsity is not a number in [0, 1).
    """
    result = []
    for entry in filter(None, entries):
        pattern, text = _split_entry(
            'weight_sparsity_map', entry, 'regex:sparsity')
        try:
            sparsity = float(text)
        except ValueError:
            raise ValueError(
                f'weight_sparsity_map entry {entry!r}: sparsity {text!r} is '
                'not a number') from None
        if sparsity >= 1.0:
            raise ValueError(
                f'Weight sparsity can not exceed 1.0 (weight_sparsity_map '
                f'entry {entry!r}; use a value in [0, 1))')
        if not sparsity >= 0.0:  # also NaN
            raise ValueError(
                f'weight_sparsity_map entry {entry!r}: sparsity must be in '
                f'[0, 1), got {sparsity}')
        result.append((re.compile(pattern), sparsity))
    return result


# Checks shared by `PruningHParams.validate` and `update_mask`'s arguments.


def check_unit_interval(name, value):
    """Raises contrib's ValueError unless 0 <= value < 1."""
    if not 0.0 <= value < 1.0:
        raise ValueError('%s must be in range [0,1), got %s' % (name, value))


def check_block_dim(name, value):
    """Raises unless a block dimension is positive or -1 (the whole one)."""
    if value != -1 and value < 1:
        raise ValueError(
            f'{name} must be a positive block size or -1 (the whole '
            f'dimension), got {value}')


def check_choice(name, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f'{name} must be one of {", ".join(choices)}, got {value!r}')


def check_pooling_function(value):
    """Raises contrib's ValueError for a pooling function it lacks."""
    if value not in POOLING_FUNCTIONS:
        raise ValueError(
            'Unknown pooling function for block sparsity: %s (use AVG or '
            'MAX)' % value)


def check_nbins(value):
    """Raises unless the histogram has 1 to 2**24 bins (counted in float32)."""
    if value < 1:
        raise ValueError(f'nbins must be >= 1, got {value}')
    if value > MAX_NBINS:
        raise ValueError(
            f'nbins must be at most {MAX_NBINS} (bins are counted in '
            f'float32, exact up to 2**24), got {value}')


def _check_steps(values):
    """Raises unless every step hparam fits contrib's int32 step."""
    for name in _STEP_HPARAMS:
        if not 0 <= values[name] <= INT32_MAX:
            raise ValueError(
                f'{name} must be in [0, {INT32_MAX}] (steps are int32, as '
                f'contrib cast the global step), got {values[name]}')
    if values['end_pruning_step'] > INT32_MAX:
        raise ValueError(
            f'end_pruning_step must be -1 (no end) or in '
            f'[begin_pruning_step + 1, {INT32_MAX}] (steps are int32, as '
            f"contrib cast the global step), got {values['end_pruning_step']}")


def _check_exponent(value):
    """Raises unless the schedule's exponent is a positive normal float32."""
    if not _FLOAT32_MIN_NORMAL <= value <= _FLOAT32_MAX:
        raise ValueError(
            f'sparsity_function_exponent must be in [{_FLOAT32_MIN_NORMAL}, '
            f'{_FLOAT32_MAX}] (a positive float32; 1 is linear, contrib\'s '
            f'default 3), got {value}')


def _schedule_ends(values):
    """The global schedule's float32 values at its begin and its end.

    The schedule is `scale * decay + target` with decay going from 1 to 0,
    so in float32 too every value lies between these two.
    """
    target = np.float32(values['target_sparsity'])
    # As the schedule: contrib subtracted the Python floats.
    scale = np.float32(values['initial_sparsity'] - values['target_sparsity'])
    return scale + target, target


def _check_weight_map_range(values, weight_map):
    """Raises unless every scaled weight target stays within [0, 1].

    A weight's target is the schedule times `its sparsity / target_sparsity`
    (float32, as the engine computes it); with initial_sparsity above
    target_sparsity the product can exceed 1, which no mask can honour.

    Args:
      values: the hparams' values.
      weight_map: `parse_weight_sparsity_map` of their weight_sparsity_map.

    Raises:
      ValueError: target_sparsity is not a normal float32, or an entry takes
        a weight's target above 1.
    """
    target = values['target_sparsity']
    if not np.float32(target) >= _FLOAT32_MIN_NORMAL:
        raise ValueError(
            f'weight_sparsity_map scales the schedule by sparsity / '
            f'target_sparsity, so it needs target_sparsity > 0 (at least '
            f'{_FLOAT32_MIN_NORMAL}, a normal float32), got {target}')
    ends = _schedule_ends(values)
    entries = filter(None, values['weight_sparsity_map'])
    for entry, (_, sparsity) in zip(entries, weight_map):
        scale = np.float32(sparsity) / np.float32(target)
        highest = max(float(end * scale) for end in ends)
        if highest > 1.0:
            raise ValueError(
                f'weight_sparsity_map entry {entry!r} scales the schedule by '
                f'{sparsity} / target_sparsity {target} up to a sparsity of '
                f'{highest:.7g}, above 1; keep initial_sparsity <= '
                f'target_sparsity or lower the entry\'s sparsity')


def _check_structure(values):
    """The structured-pruning hparams, and what channel pruning cannot do."""
    check_choice('structure', values['structure'], STRUCTURES)
    check_choice('channel_criterion', values['channel_criterion'],
                 CHANNEL_CRITERIA)
    penalty = values['bn_l1_penalty']
    if not (np.isfinite(penalty) and penalty >= 0):
        raise ValueError(
            f'bn_l1_penalty must be a finite float >= 0 (0 adds no penalty), '
            f'got {penalty}')
    if values['structure'] == 'weight':
        if penalty:
            raise ValueError(
                'bn_l1_penalty applies to the BatchNorm scales of channel '
                'groups; set structure=channel, or drop bn_l1_penalty')
        return
    # A channel is one unit: blocks and weight-change scores do not apply.
    conflicts = []
    if (values['block_height'], values['block_width']) != (1, 1):
        conflicts.append('block_height/block_width other than 1')
    if any(values['block_dims_map']):
        conflicts.append('block_dims_map')
    if values['prune_option'] != 'weight':
        conflicts.append(f"prune_option={values['prune_option']} (use "
                         f"channel_criterion=taylor for a gradient score)")
    if conflicts:
        raise ValueError(
            f'structure=channel prunes whole channels and cannot take '
            f'{", ".join(conflicts)}; drop them or use structure=weight')


def parse_n_of_m(text, what='nm_sparsity', optional=True):
    """Returns (n, m) from an `N:M` string, N kept of every M.

    Args:
      text: e.g. '2:4'.
      what: the hparam or flag the text comes from, for the message.
      optional: whether '' means N:M sparsity is off (the hparam's default)
        rather than a bad value.

    Returns:
      (n, m), integers with 1 <= n < m, or None for an optional ''.

    Raises:
      ValueError: the text is not N:M with integers 1 <= N < M.
    """
    if not text and optional:
        return None
    match = _N_OF_M.fullmatch(text)
    n, m = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not 1 <= n < m:
        raise ValueError(
            f'{what} must be N:M with integers 1 <= N < M (N weights kept '
            f'of every M; 2:4 keeps 2 of 4), got {text!r}')
    return n, m


def _check_n_of_m(values):
    """Raises for what N:M masks cannot take: they fix every weight's mask."""
    text = values['nm_sparsity']
    if parse_n_of_m(text) is None:
        return
    conflicts = []
    if values['structure'] != 'weight':
        conflicts.append(f"structure={values['structure']}")
    if (values['block_height'], values['block_width']) != (1, 1):
        conflicts.append('block_height/block_width other than 1')
    if any(values['block_dims_map']):
        conflicts.append('block_dims_map')
    if any(values['weight_sparsity_map']):
        conflicts.append('weight_sparsity_map (N:M fixes every weight\'s '
                         'sparsity at 1 - N/M)')
    if values['threshold_method'] != 'exact':
        conflicts.append(f"threshold_method={values['threshold_method']}")
    if values['threshold_decay']:
        conflicts.append('threshold_decay (N:M masks have no threshold)')
    if values['prune_option'] != 'weight':
        conflicts.append(f"prune_option={values['prune_option']}")
    if conflicts:
        raise ValueError(
            f'nm_sparsity={text} keeps the N largest |w| of every M and '
            f'cannot take {", ".join(conflicts)}; drop them or drop '
            f'nm_sparsity')


def parse_block_dims_map(entries):
    """Returns [(regex, [height, width])] from `block_dims_map` entries.

    Args:
      entries: the hparam's list of `regex:HxW` strings (empty strings are
        skipped, as contrib did).

    Returns:
      A list of (compiled regex, [height, width]) pairs; -1 stands for the
      whole dimension of the weight.

    Raises:
      ValueError: an entry is not `regex:HxW`, its regex does not compile, or
        a dimension is not a positive integer or -1.
    """
    result = []
    for entry in filter(None, entries):
        pattern, text = _split_entry('block_dims_map', entry, 'regex:HxW')
        dims = text.split('x')
        if len(dims) != 2:
            raise ValueError(
                'Expected 2 values for block dim for %s, got %s (block_dims_map '
                'entry %r; write regex:HxW)' % (pattern, dims, entry))
        try:
            dims = [int(d) for d in dims]
        except ValueError:
            raise ValueError(
                f'block_dims_map entry {entry!r}: block dims must be '
                'integers, as in regex:4x4') from None
        for d in dims:
            check_block_dim(f'block_dims_map entry {entry!r}', d)
        result.append((re.compile(pattern), dims))
    return result


class PruningHParams:
    """contrib's pruning hyperparameters.

    Build one with `tf_prune.get_pruning_hparams()`. Values are attributes
    (`hp.target_sparsity`); assigning one checks its type as TF1 did.

    Contrib's hparams (defaults in SEMANTICS order): name, begin_pruning_step,
    end_pruning_step, weight_sparsity_map, block_dims_map, threshold_decay,
    pruning_frequency, nbins, block_height, block_width,
    block_pooling_function, initial_sparsity, target_sparsity,
    sparsity_function_begin_step, sparsity_function_end_step,
    sparsity_function_exponent, use_tpu. Extensions: threshold_method
    ('exact' or 'histogram', TF 1.13's threshold), prune_option ('weight',
    'first_order_gradient' or 'second_order_gradient'),
    gradient_decay_rate, structure ('weight' or 'channel': what a mask
    entry prunes), channel_criterion ('l1', 'l2', 'bn_scale' or 'taylor'),
    bn_l1_penalty (network slimming's L1 penalty on BatchNorm scales) and
    nm_sparsity ('N:M': each update keeps the N largest |w| of every M
    consecutive weights along the input-channel axis; '' is off).

    Args:
      **overrides: hparam values that replace the defaults, type-checked as
        an assignment is.
    """

    def __init__(self, **overrides):
        values = {name: (list(v) if isinstance(v, list) else v)
                  for name, v in _DEFAULTS.items()}
        checked = {name: _checked_value(name, v) for name, v in overrides.items()}
        values.update(checked)
        object.__setattr__(self, '_values', values)

    def __getattr__(self, name):
        values = self.__dict__.get('_values')
        if values is not None and name in values:
            value = values[name]
            return list(value) if isinstance(value, list) else value
        raise AttributeError(str(_unknown_name_error(name)))

    def __setattr__(self, name, value):
        self._values[name] = _checked_value(name, value)

    def parse(self, spec):
        """Overrides values from a spec string in TF1's HParams grammar.

        Nothing is changed when the spec has an error.

        Args:
          spec: e.g. `target_sparsity=0.9,weight_sparsity_map=[conv1:0.8]`.

        Returns:
          This object.

        Raises:
          ValueError: the spec is malformed, names an unknown hparam, assigns
            one twice or gives a value of the wrong type.
        """
        self._values.update(_parse_spec(spec))
        return self

    def values(self):
        """Returns a dict of every hparam's value."""
        return {name: (list(v) if isinstance(v, list) else v)
                for name, v in self._values.items()}

    def validate(self):
        """Raises contrib's ValueError for a configuration Pruning rejects.

        Returns:
          This object.

        Raises:
          ValueError: with contrib's message, for contrib's checks; with a
            message naming the hparam and its allowed range for tf_prune's
            additional checks (steps that do not fit int32, non-finite or
            out-of-range floats, regexes Python cannot compile).
        """
        v = self._values
        if v['begin_pruning_step'] < 0:
            raise ValueError('Illegal value for begin_pruning_step')
        if (v['begin_pruning_step'] >= v['end_pruning_step']
                and v['end_pruning_step'] != -1):
            raise ValueError(
                'Pruning must begin before it can end. begin_step=%d, '
                'end_step=%d.Set end_pruning_step to -1 if pruning is required '
                'till trainingstops' % (v['begin_pruning_step'],
                                        v['end_pruning_step']))
        if v['sparsity_function_begin_step'] < 0:
            raise ValueError('Illegal value for sparsity_function_begin_step')
        if v['sparsity_function_begin_step'] >= v['sparsity_function_end_step']:
            raise ValueError('Sparsity function requires begin_step < end_step')
        for name in ('threshold_decay', 'initial_sparsity', 'target_sparsity'):
            check_unit_interval(name, v[name])
        weight_map = parse_weight_sparsity_map(v['weight_sparsity_map'])
        parse_block_dims_map(v['block_dims_map'])
        # Checks below are tf_prune's: contrib failed later, or silently.
        if v['pruning_frequency'] < 0:
            raise ValueError(
                f"pruning_frequency must be >= 0, got {v['pruning_frequency']}")
        _check_steps(v)
        _check_exponent(v['sparsity_function_exponent'])
        if weight_map:
            _check_weight_map_range(v, weight_map)
        check_block_dim('block_height', v['block_height'])
        check_block_dim('block_width', v['block_width'])
        check_pooling_function(v['block_pooling_function'])
        check_nbins(v['nbins'])
        check_choice('threshold_method', v['threshold_method'],
                     THRESHOLD_METHODS)
        check_choice('prune_option', v['prune_option'], PRUNE_OPTIONS)
        check_unit_interval('gradient_decay_rate', v['gradient_decay_rate'])
        _check_n_of_m(v)
        _check_structure(v)
        return self

    def __str__(self):
        # A list holding only empty strings (contrib's default ['']) cannot be
        # written in the grammar, which drops empty elements; leaving it out
        # keeps the default when the string is parsed back.
        clauses = [f'{name}={format_value(value)}'
                   for name, value in self._values.items()
                   if not (isinstance(value, list) and value
                           and not any(value))]
        return ','.join(clauses)

    def __repr__(self):
        return f"PruningHParams('{self}')"

    def __eq__(self, other):
        if not isinstance(other, PruningHParams):
            return NotImplemented
        return self._values == other._values

    def __reduce__(self):
        return (_from_values, (self.values(),))


def _from_values(values):
    return PruningHParams(**values)


def get_pruning_hparams():
    """Returns contrib's default pruning hyperparameters.

    Returns:
      A `PruningHParams`; call `.parse(spec)` to override values.
    """
    return PruningHParams()


def as_hparams(hparams):
    """A validated `PruningHParams` from hparams, a spec string or None.

    Args:
      hparams: a `PruningHParams` (returned as is), a spec string in TF1's
        grammar (parsed over contrib's defaults) or None (the defaults).

    Returns:
      A `PruningHParams`.

    Raises:
      ValueError: the spec does not parse or the values do not validate.
      TypeError: `hparams` is none of the above.
    """
    if hparams is None:
        hparams = get_pruning_hparams()
    elif isinstance(hparams, str):
        hparams = get_pruning_hparams().parse(hparams)
    elif not isinstance(hparams, PruningHParams):
        raise TypeError(
            f'hparams must be a PruningHParams or a spec string such as '
            f'"target_sparsity=0.9"; got {type(hparams).__name__}')
    return hparams.validate()

"""Mutated specs: bad ones are ValueErrors, good ones never fail later.

Each example starts from a valid spec and mutates it (numbers swapped for
huge, negative or non-finite ones, nasty regexes, characters replaced,
inserted or deleted). `parse()` and `validate()` may only raise ValueError;
a spec that validates must then work in the schedule, the gate (the same
answer for Python ints and tensors) and the mask update of a small weight.
"""

import re
import string

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st

import tf_prune
from tf_prune.core import hparams as hparams_lib

_INT32_MAX = 2**31 - 1

_SEEDS = [
    'name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,'
    'target_sparsity=0.9,sparsity_function_begin_step=10000,'
    'sparsity_function_end_step=100000',
    'begin_pruning_step=200,target_sparsity=0.9,sparsity_function_begin_step=200,'
    'sparsity_function_end_step=1200,weight_sparsity_map=[conv1:0.9,fc/kernel:0.8]',
    'threshold_decay=0.9,nbins=128,block_height=2,block_width=4,'
    'block_pooling_function=MAX,threshold_method=histogram',
    'block_dims_map=[fc:1x4,conv:-1x2],pruning_frequency=3,initial_sparsity=0.2,'
    'sparsity_function_exponent=1',
    'initial_sparsity=0.6,target_sparsity=0.5,end_pruning_step=-1,'
    'weight_sparsity_map=[fc:0.8]',
    'prune_option=second_order_gradient,gradient_decay_rate=0.5,'
    'weight_sparsity_map=[.*kernel:0.7],block_height=-1,block_width=3',
    'nm_sparsity=2:4,begin_pruning_step=2,pruning_frequency=2,'
    'end_pruning_step=100',
]


# Values that broke specs before: past int32, overflowing Python's regex
# compiler, non-finite, denormal, or just malformed.
_NASTY = [
    '0', '1', '-1', '-0', '3', '0.5', '0.9999999999', '2147483647', '2147483648',
    '4294967396', '9' * 400, '1e39', '1e-40', '1e308', 'nan', 'inf', '-inf',
    '(' * 500 + 'a' + ')' * 500, 'a{4294967296}', 'a{2147483648}', '(?', '*',
    '+?', '{2}', '\\', '[', ']', ',', ':', 'x', '=', ' ', '',
    '[a:0.5]', '[a{4294967296}:0.5]', '[fc:2x2]', '[fc:64x64]', '[k:nan]',
    '[conv:-0.5]', '[(((a))):0.99]', 'true', 'MAX', 'histogram',
]

# Values of each hparam type, some at the int32 ends, so that many
# mutations keep a spec valid and the checks after validation get exercised.
_GOOD = {
    int: ['0', '1', '2', '7', '100', '-1', '2147483646', '2147483647'],
    float: ['0', '0.3', '0.999', '1e-30', '1', '3', '1e30'],
    list: ['[fc:2x2]', '[fc:64x64]', '[fc:-1x1]', '[k:0.3]',
           '[conv1:0.99,fc:0.1]', '[a{1000}:0.5]', '[]'],
    str: ['AVG', 'MAX', 'exact', 'histogram', 'weight', 'first_order_gradient',
          '2:4', '1:8'],
    bool: ['true', 'False', '1'],
}
_DEFAULTS = tf_prune.get_pruning_hparams().values()


def _value(draw, name=None):
    """A value for hparam `name` (of any hparam when None), or a nasty one."""
    good = (_GOOD[type(_DEFAULTS[name])] if name
            else [v for values in _GOOD.values() for v in values])
    return draw(st.sampled_from(good) if draw(st.integers(0, 3))
                else st.sampled_from(_NASTY))


_NUMBER = re.compile(r'-?\d+(\.\d+)?')
# A clause `name=value`, the value a [list] or up to the next comma.
_CLAUSE = re.compile(r'([^=,]+)=(\[[^\]]*\]|[^,]*)')


def _replace_number(draw, spec):
    numbers = list(_NUMBER.finditer(spec))
    if not numbers:
        return spec
    match = draw(st.sampled_from(numbers))
    return spec[:match.start()] + _value(draw) + spec[match.end():]


def _set_clause(draw, spec):
    name = draw(st.sampled_from(list(_DEFAULTS)))
    clauses = [m.group(0) for m in _CLAUSE.finditer(spec)
               if m.group(1) != name]
    return ','.join(clauses + [f'{name}={_value(draw, name)}'])


def _insert(draw, spec):
    at = draw(st.integers(0, len(spec)))
    return spec[:at] + _value(draw) + spec[at:]


def _replace_character(draw, spec):
    at = draw(st.integers(0, len(spec) - 1))
    character = draw(st.sampled_from(string.printable + 'é٣'))
    return spec[:at] + character + spec[at + 1:]


def _delete(draw, spec):
    start = draw(st.integers(0, len(spec)))
    end = draw(st.integers(start, min(len(spec), start + 6)))
    return spec[:start] + spec[end:]


_MUTATIONS = [_replace_number, _replace_number, _set_clause, _set_clause,
              _set_clause, _insert, _replace_character, _delete]


@st.composite
def _mutated_specs(draw):
    spec = draw(st.sampled_from(_SEEDS))
    for _ in range(draw(st.integers(1, 2))):
        spec = draw(st.sampled_from(_MUTATIONS))(draw, spec)
    return spec


def _validated(spec):
    """The validated hparams of `spec`, or None; only ValueError may raise."""
    hparams = tf_prune.get_pruning_hparams()
    try:
        hparams.parse(spec)
        return hparams.validate()
    except ValueError:
        return None


# Two weights: one pruned element-wise, one that squeezes to a matrix and
# is pruned by blocks when the block dims say so.
_WEIGHTS = {
    'conv1/kernel': np.random.default_rng(1).normal(size=(2, 2, 3, 4)),
    'fc/kernel': np.round(np.random.default_rng(2).normal(size=(1, 6, 8)), 1),
}


def _steps(hparams):
    """Steps where the schedule and the gate change, and the int32 ends."""
    return sorted({0, 1, hparams.begin_pruning_step,
                   hparams.sparsity_function_begin_step,
                   (hparams.sparsity_function_begin_step
                    + hparams.sparsity_function_end_step) // 2,
                   hparams.sparsity_function_end_step,
                   max(hparams.end_pruning_step, 0), _INT32_MAX})


def _check_gate(hparams, step):
    for last in {0, max(step - hparams.pruning_frequency, 0), step}:
        on_host = tf_prune.mask_update_due(hparams, step, last)
        in_graph = tf_prune.mask_update_due(
            hparams, tf.constant(step, tf.int64), tf.constant(last, tf.int32))
        assert on_host is bool(in_graph), (step, last)


def _weight_sparsity(hparams, name, step):
    """The weight's target, or None where two map patterns match it."""
    try:
        return tf_prune.weight_sparsity(hparams, name, step)
    except ValueError as error:
        assert str(error).startswith('Multiple matches in weight_sparsity_map')
        return None


def _block_dims(hparams, name):
    try:
        return tf_prune.block_dims(hparams, name)
    except ValueError as error:
        assert str(error).startswith('Multiple matches in block_dims_map')
        return None


def _check_mask_update(hparams, name, step):
    sparsity = _weight_sparsity(hparams, name, step)
    block = _block_dims(hparams, name)
    if sparsity is None or block is None:
        return
    assert 0.0 <= float(sparsity) <= 1.0
    weights = _WEIGHTS[name].astype(np.float32)
    threshold, mask = tf_prune.update_mask(
        weights, sparsity, 0.5, threshold_decay=hparams.threshold_decay,
        block_dims=block, block_pooling_function=hparams.block_pooling_function,
        method=hparams.threshold_method, nbins=hparams.nbins, name=name,
        n_of_m=hparams_lib.parse_n_of_m(hparams.nm_sparsity))
    assert np.isfinite(float(threshold))
    assert mask.shape == weights.shape
    assert set(np.unique(mask.numpy())) <= {0.0, 1.0}


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_specs())
def test_mutated_specs_fail_only_as_value_errors_or_work(spec):
    hparams = _validated(spec)
    if hparams is None:
        return
    steps = _steps(hparams)
    for step in steps:
        value = float(tf_prune.compute_sparsity(hparams, step))
        assert 0.0 <= value <= 1.0, step
        _check_gate(hparams, step)
    for name in _WEIGHTS:
        for step in (steps[len(steps) // 2], steps[-1]):
            _check_mask_update(hparams, name, step)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=string.printable + 'é٣', max_size=80))
def test_validate_raises_only_value_error(text):
    _validated(text)

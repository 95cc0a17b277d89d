"""PruningHParams: contrib's grammar, defaults, errors, and the extensions."""

import math
import pickle
import string

import pytest
from hypothesis import given, settings, strategies as st

import tf_prune
from tests.conftest import load_golden

PARSE = load_golden('parse.json')
CONTRIB_NAMES = list(PARSE['defaults'])


def contrib_values(hp):
    return {name: hp.values()[name] for name in CONTRIB_NAMES}


def test_defaults_are_contribs():
    hp = tf_prune.get_pruning_hparams()
    assert contrib_values(hp) == PARSE['defaults']
    assert len(CONTRIB_NAMES) == 17
    for name, value in PARSE['defaults'].items():
        assert type(getattr(hp, name)) is type(value)


@pytest.mark.parametrize(
    'case', [c for c in PARSE['cases'] if 'values' in c], ids=lambda c: c['spec'])
def test_golden_parse_values(case):
    hp = tf_prune.get_pruning_hparams().parse(case['spec'])
    values = contrib_values(hp)
    assert values == case['values']
    for name, value in case['values'].items():
        assert type(values[name]) is type(value)


@pytest.mark.parametrize(
    'case', [c for c in PARSE['cases'] if 'error' in c and 'stage' not in c],
    ids=lambda c: c['spec'])
def test_golden_parse_errors(case):
    contrib_message = case['error'].split(': ', 1)[1]
    with pytest.raises(ValueError) as raised:
        tf_prune.get_pruning_hparams().parse(case['spec'])
    if contrib_message.startswith('Unknown hyperparameter type for '):
        name = contrib_message.rsplit(' ', 1)[1]
        assert f"Unknown hyperparameter '{name}'" in str(raised.value)
    else:
        assert contrib_message in str(raised.value)


@pytest.mark.parametrize(
    'case', [c for c in PARSE['cases'] if c.get('stage') == 'validate'],
    ids=lambda c: c['spec'])
def test_golden_validation_errors(case):
    contrib_message = case['error'].split(': ', 1)[1]
    hp = tf_prune.get_pruning_hparams().parse(case['spec'])
    with pytest.raises(ValueError) as raised:
        hp.validate()
    assert contrib_message in str(raised.value)


@pytest.mark.parametrize(
    'case', [c for c in PARSE['cases'] if c.get('valid')], ids=lambda c: c['spec'])
def test_golden_valid_specs_validate(case):
    tf_prune.get_pruning_hparams().parse(case['spec']).validate()


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=(
            "Unknown hyperparameter 'target_sparsty'; "
            "did you mean 'target_sparsity'\\?")):
        tf_prune.get_pruning_hparams().parse('target_sparsty=0.9')


def test_attribute_access_and_assignment():
    hp = tf_prune.get_pruning_hparams()
    hp.target_sparsity = 1  # an int is a valid float, as in TF1
    assert hp.target_sparsity == 1.0 and type(hp.target_sparsity) is float
    with pytest.raises(ValueError, match="hparam 'pruning_frequency'"):
        hp.pruning_frequency = 2.5
    with pytest.raises(ValueError, match='Must pass a list'):
        hp.weight_sparsity_map = 'conv1:0.5'
    with pytest.raises(AttributeError, match="did you mean 'nbins'"):
        hp.nbin  # noqa: B018
    with pytest.raises(ValueError, match="did you mean 'nbins'"):
        hp.nbin = 3


def test_returned_lists_are_copies():
    hp = tf_prune.get_pruning_hparams().parse('weight_sparsity_map=[a:0.5]')
    hp.weight_sparsity_map.append('b:0.5')
    assert hp.weight_sparsity_map == ['a:0.5']


def test_parse_changes_nothing_on_error():
    hp = tf_prune.get_pruning_hparams()
    with pytest.raises(ValueError):
        hp.parse('target_sparsity=0.9,nbins=x')
    assert hp.target_sparsity == 0.5


def test_parse_returns_the_same_object():
    hp = tf_prune.get_pruning_hparams()
    assert hp.parse('nbins=3') is hp


def test_indexed_assignment_is_an_error_naming_the_hparam():
    with pytest.raises(ValueError, match="'block_dims_map'"):
        tf_prune.get_pruning_hparams().parse('block_dims_map[0]=a:1x1')


def test_str_round_trips_a_full_spec():
    spec = ('name=cifar10_pruning,begin_pruning_step=10000,'
            'target_sparsity=0.9,weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8],'
            'block_dims_map=[],use_tpu=true,threshold_method=histogram')
    hp = tf_prune.get_pruning_hparams().parse(spec)
    assert tf_prune.get_pruning_hparams().parse(str(hp)) == hp
    default = tf_prune.get_pruning_hparams()
    assert tf_prune.get_pruning_hparams().parse(str(default)) == default


def test_pickle_round_trip():
    hp = tf_prune.get_pruning_hparams().parse('nbins=7,weight_sparsity_map=[a:0.5]')
    assert pickle.loads(pickle.dumps(hp)) == hp


def test_extension_defaults_and_checks():
    hp = tf_prune.get_pruning_hparams()
    assert (hp.threshold_method, hp.prune_option, hp.gradient_decay_rate) == (
        'exact', 'weight', 0.99)
    hp.parse('threshold_method=histogram,prune_option=second_order_gradient,'
             'gradient_decay_rate=0.5').validate()
    for spec, message in [
            ('threshold_method=median', 'threshold_method must be one of'),
            ('prune_option=magnitude', 'prune_option must be one of'),
            ('gradient_decay_rate=1.0', 'gradient_decay_rate must be in'),
            ('block_pooling_function=MIN', 'Unknown pooling function'),
            ('block_height=0', 'block_height must be a positive'),
            ('block_dims_map=[a:0x2]', 'block_dims_map entry'),
            ('block_dims_map=[a:axb]', 'must be integers'),
            ('weight_sparsity_map=[a:half]', 'is not a number'),
            ('nbins=0', 'nbins must be >= 1'),
            ('pruning_frequency=-1', 'pruning_frequency must be >= 0'),
            ('target_sparsity=0,weight_sparsity_map=[a:0.5]',
             'needs target_sparsity > 0')]:
        with pytest.raises(ValueError, match=message):
            tf_prune.get_pruning_hparams().parse(spec).validate()


def test_structured_extensions_parse_print_and_refuse_what_channels_cannot_do():
    hp = tf_prune.get_pruning_hparams()
    assert (hp.structure, hp.channel_criterion, hp.bn_l1_penalty) == (
        'weight', 'l1', 0.0)
    hp.parse('structure=channel,channel_criterion=bn_scale,'
             'bn_l1_penalty=1e-4').validate()
    assert 'structure=channel,channel_criterion=bn_scale,bn_l1_penalty=0.0001' in str(hp)
    assert tf_prune.get_pruning_hparams().parse(str(hp)) == hp
    for spec, message in [
            ('structure=filter', 'structure must be one of weight, channel'),
            ('channel_criterion=l3', 'channel_criterion must be one of l1, '
             'l2, bn_scale, taylor'),
            ('structure=channel,bn_l1_penalty=-0.1',
             r'bn_l1_penalty must be a finite float >= 0'),
            ('structure=channel,bn_l1_penalty=inf', 'bn_l1_penalty must be'),
            ('bn_l1_penalty=0.1', 'set structure=channel, or drop'),
            ('structure=channel,block_height=2',
             'cannot take block_height/block_width other than 1'),
            ('structure=channel,block_dims_map=[a:2x2]',
             'cannot take block_dims_map'),
            ('structure=channel,prune_option=first_order_gradient',
             'use channel_criterion=taylor')]:
        with pytest.raises(ValueError, match=message):
            tf_prune.get_pruning_hparams().parse(spec).validate()


def test_bad_regex_is_a_value_error_naming_the_entry():
    hp = tf_prune.get_pruning_hparams().parse('block_dims_map=[(:2x2]')
    with pytest.raises(ValueError, match="block_dims_map entry '\\(:2x2'"):
        hp.validate()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=string.printable + 'é٣', max_size=60))
def test_parser_raises_only_value_error(text):
    try:
        tf_prune.get_pruning_hparams().parse(text)
    except ValueError:
        pass


_SAFE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + '_./*:-',
                     min_size=1, max_size=12)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    'name': st.text(alphabet=string.ascii_letters + ' _-', max_size=12).map(
        str.lstrip),
    'begin_pruning_step': st.integers(-10**12, 10**12),
    'weight_sparsity_map': st.lists(_SAFE_TEXT, max_size=4),
    'block_dims_map': st.lists(_SAFE_TEXT, max_size=4),
    'threshold_decay': _FLOATS,
    'nbins': st.integers(),
    'target_sparsity': _FLOATS,
    'use_tpu': st.booleans(),
    'threshold_method': _SAFE_TEXT,
    'nm_sparsity': _SAFE_TEXT,
}))
def test_str_parses_back_to_equal_values(overrides):
    hp = tf_prune.PruningHParams(**overrides)
    back = tf_prune.get_pruning_hparams().parse(str(hp)).values()
    for name, value in hp.values().items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(back[name])
        else:
            assert back[name] == value, name


# Specs that passed validation, then crashed or wrapped (issue 16).

_DEEP_NESTING = '(' * 500 + 'a' + ')' * 500


@pytest.mark.parametrize('hparam, entry, error', [
    ('weight_sparsity_map', 'a{4294967296}:0.5', 'OverflowError'),
    ('weight_sparsity_map', f'{_DEEP_NESTING}:0.5', 'RecursionError'),
    ('block_dims_map', 'a{4294967296}:2x2', 'OverflowError'),
    ('block_dims_map', f'{_DEEP_NESTING}:2x2', 'RecursionError'),
    ('block_dims_map', 'a**:2x2', 'bad regex'),
])
def test_regexes_python_cannot_compile_are_value_errors(hparam, entry, error):
    hp = tf_prune.get_pruning_hparams().parse(f'{hparam}=[{entry}]')
    with pytest.raises(ValueError) as raised:
        hp.validate()
    message = str(raised.value)
    assert message.startswith(f'{hparam} entry {entry!r}')
    assert error in message and '\n' not in message
    if error != 'bad regex':
        assert 'use smaller repeat counts and fewer nested groups' in message


_INT32_MAX = 2**31 - 1
_STEP_HPARAMS = ['begin_pruning_step', 'end_pruning_step',
                 'sparsity_function_begin_step', 'sparsity_function_end_step',
                 'pruning_frequency']


def _step_spec(name, value):
    """A spec setting one step hparam, with the others consistent with it."""
    others = {'begin_pruning_step': 'end_pruning_step=-1',
              'sparsity_function_begin_step':
                  f'sparsity_function_end_step={_INT32_MAX}'}
    return ','.join(filter(None, [f'{name}={value}', others.get(name)]))


@pytest.mark.parametrize('name', _STEP_HPARAMS)
@pytest.mark.parametrize('value', [2**31, 4294967396, int('9' * 400)])
def test_steps_beyond_int32_are_rejected_naming_the_range(name, value):
    if name == 'sparsity_function_begin_step':
        value = _INT32_MAX  # not below the end step, which cannot be larger
        spec = f'{name}={value},sparsity_function_end_step={2**31}'
        name = 'sparsity_function_end_step'
    else:
        spec = _step_spec(name, value)
    hp = tf_prune.get_pruning_hparams().parse(spec)
    with pytest.raises(ValueError, match=(
            f'^{name} must be .*{_INT32_MAX}\\] \\(steps are int32')):
        hp.validate()


@pytest.mark.parametrize('name', _STEP_HPARAMS)
def test_steps_up_to_int32_max_are_valid(name):
    if name == 'sparsity_function_begin_step':
        spec = f'{name}={_INT32_MAX - 1},sparsity_function_end_step={_INT32_MAX}'
    else:
        spec = _step_spec(name, _INT32_MAX)
    tf_prune.get_pruning_hparams().parse(spec).validate()


_FLOAT_HPARAMS = ['threshold_decay', 'initial_sparsity', 'target_sparsity',
                  'sparsity_function_exponent', 'gradient_decay_rate']


@pytest.mark.parametrize('name', _FLOAT_HPARAMS)
@pytest.mark.parametrize('value', ['nan', 'inf', '-inf'])
def test_non_finite_floats_are_rejected(name, value):
    hp = tf_prune.get_pruning_hparams().parse(f'{name}={value}')
    with pytest.raises(ValueError, match=f'^{name} must be in'):
        hp.validate()


@pytest.mark.parametrize('value', ['-1', '0', '1e-40', '1e39'])
def test_exponents_the_schedule_cannot_honour_are_rejected(value):
    hp = tf_prune.get_pruning_hparams().parse(
        f'sparsity_function_exponent={value}')
    with pytest.raises(ValueError, match=(
            r'^sparsity_function_exponent must be in \[1.1754943508222875e-38, '
            r'3.4028234663852886e\+38\] \(a positive float32; 1 is linear')):
        hp.validate()


@pytest.mark.parametrize('value', ['1', '3', '0.25', '100'])
def test_positive_exponents_are_valid(value):
    tf_prune.get_pruning_hparams().parse(
        f'sparsity_function_exponent={value}').validate()


@pytest.mark.parametrize('entry', ['a:nan', 'a:-0.5', 'a:-inf'])
def test_weight_map_sparsities_below_zero_or_nan_are_rejected(entry):
    hp = tf_prune.get_pruning_hparams().parse(f'weight_sparsity_map=[{entry}]')
    with pytest.raises(ValueError, match=(
            f"weight_sparsity_map entry '{entry}': sparsity must be in "
            r'\[0, 1\)')):
        hp.validate()


def test_weight_map_scaled_above_one_is_rejected():
    hp = tf_prune.get_pruning_hparams().parse(
        'initial_sparsity=0.9,target_sparsity=0.1,weight_sparsity_map=[a:0.5]')
    with pytest.raises(ValueError, match=(
            "weight_sparsity_map entry 'a:0.5' scales the schedule by 0.5 / "
            'target_sparsity 0.1 up to a sparsity of 4.5, above 1; keep '
            'initial_sparsity <= target_sparsity')):
        hp.validate()
    # initial above target is fine while the scaled schedule stays below 1.
    tf_prune.get_pruning_hparams().parse(
        'initial_sparsity=0.6,target_sparsity=0.5,weight_sparsity_map=[a:0.8]'
    ).validate()


def test_weight_map_needs_a_normal_float32_target():
    hp = tf_prune.get_pruning_hparams().parse(
        'target_sparsity=1e-40,weight_sparsity_map=[a:0.5]')
    with pytest.raises(ValueError, match='needs target_sparsity > 0'):
        hp.validate()


def test_nbins_above_two_to_the_24_are_rejected():
    tf_prune.get_pruning_hparams().parse(f'nbins={2**24}').validate()
    with pytest.raises(ValueError, match=r'nbins must be at most 16777216'):
        tf_prune.get_pruning_hparams().parse(f'nbins={2**24 + 1}').validate()


def test_nm_sparsity_parses_validates_and_prints_back():
    hp = tf_prune.get_pruning_hparams()
    assert hp.nm_sparsity == ''
    hp.parse('nm_sparsity=2:4,begin_pruning_step=2').validate()
    assert hp.nm_sparsity == '2:4'
    assert 'nm_sparsity=2:4' in str(hp).split(',')
    assert tf_prune.get_pruning_hparams().parse(str(hp)) == hp
    off = tf_prune.get_pruning_hparams()
    assert tf_prune.get_pruning_hparams().parse(str(off)).nm_sparsity == ''
    for text in ('1:2', '3:8', '7:8', '1:1000000'):
        tf_prune.get_pruning_hparams().parse(f'nm_sparsity={text}').validate()


@pytest.mark.parametrize('text', [
    '4:2', '2:2', '0:4', '2', '2:4:8', 'x', '2:x', ':4', '-1:4', '2.0:4',
    ' 2:4', '٢:٤'])
def test_nm_sparsity_that_is_not_n_of_m_is_refused_naming_it(text):
    hp = tf_prune.get_pruning_hparams()
    hp.nm_sparsity = text
    with pytest.raises(ValueError) as raised:
        hp.validate()
    assert str(raised.value) == (
        f'nm_sparsity must be N:M with integers 1 <= N < M (N weights kept of '
        f'every M; 2:4 keeps 2 of 4), got {text!r}')


@pytest.mark.parametrize('clause, named', [
    ('structure=channel', 'structure=channel'),
    ('block_height=2', 'block_height/block_width other than 1'),
    ('block_width=-1', 'block_height/block_width other than 1'),
    ('block_dims_map=[fc:1x4]', 'block_dims_map'),
    ('weight_sparsity_map=[fc:0.8]',
     "weight_sparsity_map (N:M fixes every weight's sparsity at 1 - N/M)"),
    ('threshold_method=histogram', 'threshold_method=histogram'),
    ('threshold_decay=0.5', 'threshold_decay (N:M masks have no threshold)'),
    ('prune_option=first_order_gradient', 'prune_option=first_order_gradient'),
])
def test_nm_sparsity_refuses_what_fixed_patterns_cannot_take(clause, named):
    hp = tf_prune.get_pruning_hparams().parse(f'nm_sparsity=2:4,{clause}')
    with pytest.raises(ValueError) as raised:
        hp.validate()
    assert str(raised.value) == (
        f'nm_sparsity=2:4 keeps the N largest |w| of every M and cannot take '
        f'{named}; drop them or drop nm_sparsity')
    # Each is fine without N:M.
    tf_prune.get_pruning_hparams().parse(clause).validate()


def test_nm_sparsity_refusal_lists_every_conflict():
    hp = tf_prune.get_pruning_hparams().parse(
        'nm_sparsity=1:4,block_height=2,threshold_method=histogram')
    with pytest.raises(ValueError, match=(
            r'^nm_sparsity=1:4 .* cannot take block_height/block_width other '
            r'than 1, threshold_method=histogram; drop them')):
        hp.validate()

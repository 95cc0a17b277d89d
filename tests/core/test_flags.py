"""The absl --pruning_hparams flag."""

import pytest
from absl import flags

import tf_prune


def _flag_values(argv):
    flag_values = flags.FlagValues()
    tf_prune.flags.DEFINE_pruning_hparams(flag_values=flag_values)
    flag_values(['prog'] + argv)
    return flag_values


def test_flag_has_contribs_help_and_default():
    flag_values = _flag_values([])
    flag = flag_values['pruning_hparams']
    assert flag.help == 'Comma separated list of pruning-related hyperparameters'
    assert flag.value == ''
    hp = tf_prune.flags.pruning_hparams_from_flags(flag_values)
    assert hp == tf_prune.get_pruning_hparams()


def test_flag_value_is_parsed_and_validated():
    flag_values = _flag_values([
        '--pruning_hparams=name=cifar10_pruning,target_sparsity=0.9,'
        'weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8]'])
    hp = tf_prune.flags.pruning_hparams_from_flags(flag_values)
    assert hp.name == 'cifar10_pruning'
    assert hp.weight_sparsity_map == ['conv1:0.9', 'conv2/kernel:0.8']


@pytest.mark.parametrize('spec, message', [
    ('target_sparsty=0.9', "did you mean 'target_sparsity'"),
    ('target_sparsity=1.0', 'target_sparsity must be in range'),
])
def test_bad_flag_value_names_the_flag(spec, message):
    flag_values = _flag_values([f'--pruning_hparams={spec}'])
    with pytest.raises(ValueError, match=message) as raised:
        tf_prune.flags.pruning_hparams_from_flags(flag_values)
    assert str(raised.value).startswith(f'--pruning_hparams={spec}: ')

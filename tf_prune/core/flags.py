"""The absl `--pruning_hparams` flag that contrib's training scripts used.

Usage, at the top of a training script:

    from absl import app, flags
    import tf_prune

    tf_prune.flags.DEFINE_pruning_hparams()
    FLAGS = flags.FLAGS

    def main(argv):
        hparams = tf_prune.flags.pruning_hparams_from_flags()
"""

from absl import flags as absl_flags

from tf_prune.core import hparams as hparams_lib

FLAG_NAME = 'pruning_hparams'
# contrib's cifar10_train.py help text.
HELP = 'Comma separated list of pruning-related hyperparameters'


def DEFINE_pruning_hparams(default='', flag_values=absl_flags.FLAGS):  # pylint: disable=invalid-name
    """Defines the string flag `--pruning_hparams`.

    Args:
      default: the spec used when the flag is not given.
      flag_values: the `FlagValues` to define it in.

    Returns:
      The flag's holder.
    """
    return absl_flags.DEFINE_string(FLAG_NAME, default, HELP,
                                    flag_values=flag_values)


def pruning_hparams_from_flags(flag_values=absl_flags.FLAGS):
    """Returns contrib's defaults overridden by `--pruning_hparams`, validated.

    Args:
      flag_values: the parsed `FlagValues` holding `--pruning_hparams`.

    Returns:
      A validated `PruningHParams`.

    Raises:
      ValueError: the flag's spec does not parse or does not validate; the
        message names the flag.
    """
    spec = flag_values[FLAG_NAME].value
    try:
        return hparams_lib.as_hparams(spec)
    except ValueError as e:
        raise ValueError(f'--{FLAG_NAME}={spec}: {e}') from None

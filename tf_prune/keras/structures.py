"""Pruning structures beyond contrib's weights, by `structure` hparam value.

`tf_prune.prune`, `Pruning` and `PruningCallback` are contrib's weight
pruning. A capability package above this one (`tf_prune.structured` for
`structure=channel`) registers how it wraps a model and which controller
updates its masks; importing `tf_prune` imports every such package, so the
registry is complete before any of them is used.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Structure:
    """How one structure prunes.

    Attributes:
      prune: `prune(model_or_layer, hparams, strict)`, as `tf_prune.prune`.
      controller: the `Pruning` subclass that updates its masks.
    """
    prune: object
    controller: type


_registered = {}


def register(name, structure):
    """Registers `structure` (a `Structure`) for `structure=name`."""
    _registered[name] = structure


def get(name):
    """The `Structure` registered for `structure=name`.

    Raises:
      ValueError: nothing is registered for `name` (its package was not
        imported).
    """
    if name not in _registered:
        raise ValueError(
            f'structure={name} is provided by a tf_prune package that is not '
            f'loaded; import tf_prune (not only tf_prune.keras) first')
    return _registered[name]

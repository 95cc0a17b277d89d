"""Uniform pruning at a given size: the baseline a suggestion is measured
against.

`parameters_after(model, spec)` counts what one-shot pruning with `spec`
leaves; `uniform_like(model, parameters, structure)` (or
`UniformPruning(...).like`) finds the single `target_sparsity` (every unit
alike) whose one-shot pruning leaves as many parameters as given, so a
suggested `weight_sparsity_map` and uniform pruning can be compared at
equal size.
"""

import dataclasses

import numpy as np

from tf_prune.core import hparams as hparams_lib
from tf_prune.core import masking
from tf_prune.core import schedule
from tf_prune.keras.prune import prune
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured.shrink import shrink

# The search stops when the bracket of sparsities is this narrow: no
# count changes within it on any model small enough to scan.
_RESOLUTION = 1e-7
_MAX_EVALUATIONS = 60
# target_sparsity is below 1: the largest float32 that is.
_HIGHEST = 1 - 2**-24


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform one-shot pruning found for a parameter count.

    Attributes:
      spec: the hparams string (`structure`, `channel_criterion` for
        channels, `target_sparsity`).
      target_sparsity: its sparsity, the same for every unit.
      parameters: the parameters its one-shot pruning leaves (see
        `parameters_after`).
      evaluations: the sparsities the search counted.
    """
    spec: str
    target_sparsity: float
    parameters: int
    evaluations: int


def uniform_spec(sparsity, structure='weight', criterion='l1'):
    """The spec of uniform pruning to `sparsity` (9 significant digits)."""
    clauses = [f'structure={structure}']
    if structure == 'channel':
        clauses.append(f'channel_criterion={criterion}')
    clauses.append(f'target_sparsity={sparsity:.9g}')
    return ','.join(clauses)


def parameters_after(model, spec):
    """The parameters one-shot pruning with `spec` leaves.

    For `structure=weight`: the model's parameters less the zeros of its
    pruned weights (`mask * weight`, as `strip_pruning` writes them; a zero
    the weight held already counts too). For `structure=channel`: the
    parameters of the shrunk model (`shrink`: consumers' input slices go
    with their channels). Parameters are `count_params()`: all weights,
    BatchNormalization's moving statistics too.

    Args:
      model: a built Keras model, not pruned; left as given.
      spec: a spec string or `PruningHParams`; pruned with
        `prune(model, spec, one_shot=True)`.

    Returns:
      An int.
    """
    hparams = hparams_lib.as_hparams(spec)
    pruned = prune(model, hparams, one_shot=True)
    if hparams.structure == 'channel':
        return int(shrink(pruned).count_params())
    zeros = 0
    for wrapper in find_wrappers(pruned):
        for weight in wrapper.pruned_weights:
            zeros += int(np.sum((weight.mask * weight.weight).numpy() == 0))
    return int(model.count_params()) - zeros


class UniformPruning:
    """Uniform one-shot pruning of one model, at any `target_sparsity`.

    For `structure=weight`, the counts of the search come from contrib's
    `update_mask` run on each pruned weight at the sparsity (what one-shot
    pruning runs for each, as the scan does), without building a pruned
    model each time; the sparsity found is then counted by
    `parameters_after` itself. For channels, every count is
    `parameters_after`'s.

    Args:
      model: a built Keras model, not pruned; left as given.
      structure: 'weight' or 'channel'.
      criterion: the channel criterion ('l1', 'l2' or 'bn_scale').

    Raises:
      ValueError: bad structure or criterion, or nothing to prune.
    """

    def __init__(self, model, structure='weight', criterion='l1'):
        hparams_lib.check_choice('structure', structure, ('weight', 'channel'))
        self._model = model
        self._structure = structure
        self._criterion = criterion
        self._counts = {}
        self._weights = None
        if structure == 'weight':
            hparams = hparams_lib.as_hparams(self.spec(0.5))
            self._weights = [
                (p.weight, schedule.plan_weight(hparams, p.name)
                 .mask_arguments)
                for wrapper in find_wrappers(prune(model, hparams))
                for p in wrapper.pruned_weights]
        else:
            self.parameters(0.0)  # raises when nothing can be pruned

    def spec(self, sparsity):
        """The spec of uniform pruning to `sparsity`."""
        return uniform_spec(sparsity, self._structure, self._criterion)

    def parameters(self, sparsity):
        """What one-shot pruning to `sparsity` leaves (see
        `parameters_after`)."""
        if sparsity not in self._counts:
            if self._weights is None:
                count = parameters_after(self._model, self.spec(sparsity))
            else:
                count = int(self._model.count_params()) - sum(
                    self._zeros(weight.numpy(), sparsity, arguments)
                    for weight, arguments in self._weights)
            self._counts[sparsity] = count
        return self._counts[sparsity]

    @staticmethod
    def _zeros(weight, sparsity, arguments):
        _, mask = masking.update_mask(weight, sparsity, **arguments)
        return int(np.sum(mask.numpy() * weight == 0))

    def like(self, parameters):
        """The uniform pruning that leaves `parameters` parameters.

        `parameters(sparsity)` falls (in steps) as the sparsity rises; the
        search brackets the target and narrows the bracket by interpolation
        (bisection when that stalls) until a sparsity leaves exactly
        `parameters`, or the bracket is too narrow to change a count. Exact
        equality is not always possible (a weight's count moves by whole
        elements, a channel's by its slices); the result is then the
        sparsity whose count is nearest (the lower sparsity of a tie).

        Args:
          parameters: the parameters to leave (say, `parameters_after` of a
            suggested spec).

        Returns:
          A `Uniform`, its `parameters` counted by `parameters_after`.
        """
        count = self.parameters
        low, high = 0.0, _HIGHEST
        if count(low) <= parameters:
            return self._found(low)
        if count(high) >= parameters:
            return self._found(high)
        bisect = False
        evaluations = 2
        while high - low > _RESOLUTION and evaluations < _MAX_EVALUATIONS:
            at_low, at_high = count(low), count(high)
            middle = (low + high) / 2
            if not bisect:
                middle = low + (high - low) * (at_low - parameters) / (
                    at_low - at_high)
                # Keep well inside the bracket, so each step shrinks it.
                margin = (high - low) / 16
                middle = min(max(middle, low + margin), high - margin)
            # As the spec writes it, so the spec prunes what was counted.
            middle = float(f'{middle:.9g}')
            if not low < middle < high:
                break
            found = count(middle)
            evaluations += 1
            if found == parameters:
                break
            previous = high - low
            if found > parameters:
                low = middle
            else:
                high = middle
            # Interpolation that removed less than half the bracket: bisect
            # next.
            bisect = not bisect and (high - low) > previous / 2
        counts = self._counts
        return self._found(min(counts, key=lambda s: (
            abs(counts[s] - parameters), s)))

    def _found(self, sparsity):
        spec = self.spec(sparsity)
        return Uniform(spec, sparsity, parameters_after(self._model, spec),
                       len(self._counts))


def uniform_like(model, parameters, structure='weight', criterion='l1'):
    """The uniform one-shot pruning of `model` that leaves `parameters`
    parameters: `UniformPruning(model, structure, criterion).like(parameters)`.
    """
    return UniformPruning(model, structure, criterion).like(parameters)

"""`suggest`: per-unit sparsities that fit a metric budget, as a spec.

The method. A scan gives, for each unit u and sparsity s, the drop d_u(s)
of the metric (base minus metric, at least 0, made non-decreasing in s) and
what pruning removes, g_u(s) (parameters or FLOPs). Assuming drops add up,
the allocation is a knapsack: choose one s_u per unit maximising the sum of
g_u(s_u) with the sum of d_u(s_u) within a budget. A greedy pass solves it
approximately: from all units at 0, it repeatedly takes the move (a unit to
any higher scanned sparsity) with the most gain per unit of added drop
that keeps the budget, free moves (no added drop) first.

Drops do not add up exactly: pruning several layers together usually costs
more than the sum of their separate drops. So the allocation is then
checked: the whole model is pruned one-shot with the suggested spec
(`tf_prune.prune(model, spec, one_shot=True)`) and evaluated. While its
drop exceeds `max_drop`, the budget shrinks (by the excess ratio, and at
least by a quarter) and the allocation is redone; after `max_tries`, the
suggestion prunes nothing.

Limits: the metric is one-shot, before any fine-tuning, on the data
`evaluate` reads; a suggestion is a starting point for pruning during
training (which recovers much of a one-shot drop), not a guarantee after
it. Only the scanned sparsities are chosen from, and units outside the scan
are left dense.
"""

import dataclasses

import numpy as np

from tf_prune.core import hparams as hparams_lib
from tf_prune.keras.prune import prune
from tf_prune.structured import cost
from tf_prune.structured.shrink import shrink
from tf_prune.sensitivity.scan import metric_of
from tf_prune.sensitivity.scan import units_of

OBJECTIVES = ('parameters', 'flops')


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A suggested spec, and how it was checked.

    Attributes:
      spec: the hparams string (`structure`, `channel_criterion`,
        `target_sparsity` and `weight_sparsity_map`), which
        `get_pruning_hparams().parse` and `prune` take as is.
      sparsities: `{unit name: sparsity}`, every unit of the model (0 for
        those left dense).
      predicted_drop: the sum of the units' scanned drops.
      metric: the whole model's one-shot metric with `spec`.
      drop: the base metric minus `metric`.
      parameters_removed, flops_removed: what the suggestion removes
        (FLOPs: None when the scan has none): for weights the scan's rows
        added up, for channels counted on the shrunk model (groups pruned
        together share their consumers' slices).
      tries: the `(budget, measured drop)` of each allocation tried.
    """
    spec: str
    sparsities: dict
    predicted_drop: float
    metric: float
    drop: float
    parameters_removed: int
    flops_removed: object
    tries: tuple


def _options(result, unit, objective):
    """`[(sparsity, drop, gain)]` of a unit, from 0, drop non-decreasing."""
    options = [(0.0, 0.0, 0)]
    for row in (r for r in result.rows if r.unit == unit):
        gain = (row.parameters_removed if objective == 'parameters'
                else row.flops_removed)
        drop = max(result.base_metric - row.metric, options[-1][1], 0.0)
        options.append((row.sparsity, drop, gain))
    return options


def _allocate(options, budget):
    """Greedy knapsack: `{unit: option index}` within `budget`."""
    chosen = {unit: 0 for unit in options}
    spent = 0.0
    while True:
        best = None
        for unit, choices in options.items():
            _, drop, gain = choices[chosen[unit]]
            for index in range(chosen[unit] + 1, len(choices)):
                _, new_drop, new_gain = choices[index]
                added = new_drop - drop
                if new_gain <= gain or spent + added > budget + 1e-12:
                    continue
                # Free moves first, then the most gain per added drop.
                key = (added <= 0, (new_gain - gain) / max(added, 1e-12))
                if best is None or key > best[0]:
                    best = (key, unit, index, added)
        if best is None:
            return chosen
        _, unit, index, added = best
        chosen[unit] = index
        spent += added


def _spec(result, sparsities, units):
    """The spec string of `{unit: sparsity}` over every unit."""
    target = max(sparsities.values(), default=0.0)
    clauses = [f'structure={result.structure}',
               f'channel_criterion={result.criterion}',
               f'target_sparsity={target:g}' if target else 'target_sparsity=0']
    if target:
        entries = ','.join(f'{unit.pattern}:{sparsities[unit.name]:g}'
                           for unit in units)
        clauses.append(f'weight_sparsity_map=[{entries}]')
    return ','.join(clauses)


def suggest(result, max_drop, model, evaluate, objective='parameters',
            max_tries=8):
    """Per-unit sparsities whose one-shot drop stays within `max_drop`.

    Args:
      result: a `ScanResult` of `model`.
      max_drop: the largest acceptable drop of the metric (its units: 0.01
        is one point of accuracy), >= 0.
      model: the scanned model (left as given).
      evaluate: the scan's metric function; here it is called with the
        pruned model too, which is not compiled (call it, or `predict`).
      objective: what to remove most of: 'parameters' or 'flops'.
      max_tries: allocations to check before suggesting nothing.

    Returns:
      A `Suggestion`.

    Raises:
      ValueError: a bad `max_drop` or `objective`, or FLOPs asked of a scan
        without them.
    """
    if not (np.isfinite(max_drop) and max_drop >= 0):
        raise ValueError(f'max_drop must be a finite value >= 0 in the '
                         f'metric\'s units (0.01: one point), got {max_drop}')
    hparams_lib.check_choice('objective', objective, OBJECTIVES)
    if objective == 'flops' and result.flops is None:
        raise ValueError('the scan has no FLOPs (the model is not '
                         'Sequential or Functional); use parameters')
    options = {u.name: _options(result, u.name, objective)
               for u in result.units}
    hparams = hparams_lib.as_hparams(
        f'structure={result.structure},channel_criterion={result.criterion}')
    all_units = units_of(model, hparams)
    budget = float(max_drop)
    tries = []
    for _ in range(max_tries):
        chosen = _allocate(options, budget)
        sparsities = {u.name: 0.0 for u in all_units}
        sparsities.update({unit: options[unit][index][0]
                           for unit, index in chosen.items()})
        spec = _spec(result, sparsities, all_units)
        pruned = prune(model, spec, one_shot=True)
        metric = metric_of(evaluate, pruned)
        drop = result.base_metric - metric
        tries.append((budget, drop))
        if drop <= max_drop:
            break
        budget = min(budget * 0.75, budget * max_drop / drop)
    else:
        sparsities = {u.name: 0.0 for u in all_units}
        chosen = {unit: 0 for unit in options}
        spec = _spec(result, sparsities, all_units)
        pruned = None
        metric, drop = result.base_metric, 0.0
    picked = [options[unit][index] for unit, index in chosen.items()]
    if result.structure == 'channel' and pruned is not None:
        # Groups pruned together share consumer slices: count the model
        # `shrink` builds rather than add up the scan's rows.
        shrunk = shrink(pruned)
        parameters = model.count_params() - shrunk.count_params()
        flops = cost.flops(model) - cost.flops(shrunk)
    else:
        parameters = sum(_gain(result, unit, options[unit][index][0],
                               'parameters')
                         for unit, index in chosen.items())
        flops = (None if result.flops is None else sum(
            _gain(result, unit, options[unit][index][0], 'flops')
            for unit, index in chosen.items()))
    return Suggestion(spec, sparsities, sum(o[1] for o in picked), metric,
                      drop, parameters, flops, tuple(tries))


def _gain(result, unit, sparsity, objective):
    if sparsity == 0:
        return 0
    row = next(r for r in result.rows
               if r.unit == unit and r.sparsity == sparsity)
    return (row.parameters_removed if objective == 'parameters'
            else row.flops_removed)

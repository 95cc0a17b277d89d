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
drop exceeds `max_drop`, the allocation is redone within a smaller budget:
the failed allocation's summed scanned drop, scaled down by the measured
excess (max_drop / drop) and by a quarter at least, so that allocation
cannot come again. Moves of no scanned drop ("free" moves) fit any budget,
so an allocation of those alone would repeat: then its most pruned unit
(the highest sparsity) is capped one scanned sparsity lower, for this and
every later try. Each try thus checks an allocation not checked before;
after `max_tries`, the suggestion prunes nothing.

Limits: the metric is one-shot, before any fine-tuning, on the data
`evaluate` reads; a suggestion is a starting point for pruning during
training (which recovers much of a one-shot drop), not a guarantee after
it. Only the scanned sparsities are chosen from, and units outside the scan
are left dense. Free moves are given up last: only once an allocation of
free moves alone fails, and then one scanned sparsity of one unit per try.
When free moves break `max_drop`, the tries before that give up costly
moves in vain, and a model with many free moves can need more than
`max_tries`.
"""

import dataclasses
import typing

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
      tries: the `Try` of each allocation checked, in order.
    """
    spec: str
    sparsities: dict
    predicted_drop: float
    metric: float
    drop: float
    parameters_removed: int
    flops_removed: object
    tries: tuple


class Try(typing.NamedTuple):
    """One allocation checked on the whole model.

    Attributes:
      budget: the sum of scanned drops it was allocated within.
      drop: the whole model's one-shot drop measured with it.
      sparsities: `{unit name: sparsity}` of the scanned units.
    """
    budget: float
    drop: float
    sparsities: dict


def _options(result, unit, objective):
    """`[(sparsity, drop, gain)]` of a unit, from 0, drop non-decreasing."""
    options = [(0.0, 0.0, 0)]
    for row in (r for r in result.rows if r.unit == unit):
        gain = (row.parameters_removed if objective == 'parameters'
                else row.flops_removed)
        drop = max(result.base_metric - row.metric, options[-1][1], 0.0)
        options.append((row.sparsity, drop, gain))
    return options


def _allocate(options, budget, caps):
    """Greedy knapsack: `{unit: option index}` within `budget`.

    Args:
      options: `{unit: _options(...)}`.
      budget: the largest sum of scanned drops.
      caps: `{unit: the highest option index it may take}`.

    Returns:
      `{unit: option index}`, every unit of `options`, in their order.
    """
    chosen = {unit: 0 for unit in options}
    spent = 0.0
    while True:
        best = None
        for unit, choices in options.items():
            _, drop, gain = choices[chosen[unit]]
            for index in range(chosen[unit] + 1, caps[unit] + 1):
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


def _most_pruned(options, chosen):
    """The unit `chosen` prunes furthest (the highest sparsity, then the
    highest scanned drop, then the first), or None when it prunes none."""
    pruned = [unit for unit, index in chosen.items() if index]
    if not pruned:
        return None
    return max(pruned, key=lambda unit: options[unit][chosen[unit]][:2])


def _untried_allocation(options, budget, caps, tried):
    """An allocation within `budget` and `caps` that is not in `tried`.

    A budget below a failed allocation's scanned drop rules that allocation
    out, unless its moves add no scanned drop ("free" moves, which any
    budget allows). So while the allocation repeats one tried, its most
    pruned unit is capped a scanned sparsity lower: no allocation is
    checked twice.

    Args:
      options: `{unit: _options(...)}`.
      budget: the largest sum of scanned drops.
      caps: `{unit: the highest option index it may take}`; lowered here,
        for this try and every later one.
      tried: the allocations tried, as `tuple(chosen.items())`.

    Returns:
      `{unit: option index}`, or None when all units are at 0 and that was
      tried.
    """
    while True:
        chosen = _allocate(options, budget, caps)
        if tuple(chosen.items()) not in tried:
            return chosen
        unit = _most_pruned(options, chosen)
        if unit is None:
            return None
        caps[unit] = chosen[unit] - 1


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


def _check_arguments(result, max_drop, objective):
    """Raises ValueError for a bad `max_drop` or `objective`."""
    if not (np.isfinite(max_drop) and max_drop >= 0):
        raise ValueError(f'max_drop must be a finite value >= 0 in the '
                         f'metric\'s units (0.01: one point), got {max_drop}')
    hparams_lib.check_choice('objective', objective, OBJECTIVES)
    if objective == 'flops' and result.flops is None:
        raise ValueError('the scan has no FLOPs (the model is not '
                         'Sequential or Functional); use parameters')


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
    _check_arguments(result, max_drop, objective)
    options = {u.name: _options(result, u.name, objective)
               for u in result.units}
    hparams = hparams_lib.as_hparams(
        f'structure={result.structure},channel_criterion={result.criterion}')
    all_units = units_of(model, hparams)
    caps = {unit: len(choices) - 1 for unit, choices in options.items()}
    budget = float(max_drop)
    tried, tries = set(), []
    for _ in range(max_tries):
        chosen = _untried_allocation(options, budget, caps, tried)
        if chosen is None:
            break
        tried.add(tuple(chosen.items()))
        sparsities = _sparsities(options, chosen, all_units)
        spec = _spec(result, sparsities, all_units)
        pruned = prune(model, spec, one_shot=True)
        metric = metric_of(evaluate, pruned)
        drop = result.base_metric - metric
        tries.append(Try(budget, drop, {unit: options[unit][index][0]
                                        for unit, index in chosen.items()}))
        if drop <= max_drop:
            return _suggestion(result, model, spec, sparsities,
                               _predicted_drop(options, chosen), pruned,
                               metric, tries)
        # Below the failed allocation's scanned drop, so it cannot come
        # again: scaled by the measured excess, and by a quarter at least.
        budget = _predicted_drop(options, chosen) * min(0.75, max_drop / drop)
    sparsities = {u.name: 0.0 for u in all_units}
    return _suggestion(result, model, _spec(result, sparsities, all_units),
                       sparsities, 0.0, None, result.base_metric, tries)


def _sparsities(options, chosen, units):
    """`{unit name: sparsity}` of every unit of the model (0: not chosen)."""
    sparsities = {u.name: 0.0 for u in units}
    sparsities.update({unit: options[unit][index][0]
                       for unit, index in chosen.items()})
    return sparsities


def _predicted_drop(options, chosen):
    """The sum of the chosen options' scanned drops."""
    return sum(options[unit][index][1] for unit, index in chosen.items())


def _suggestion(result, model, spec, sparsities, predicted_drop, pruned,
                metric, tries):
    """The `Suggestion` of a spec.

    Args:
      result: the scan.
      model: the scanned model.
      spec: the spec suggested.
      sparsities: `{unit name: sparsity}` of every unit, as `spec` prunes.
      predicted_drop: the sum of its scanned drops.
      pruned: the model pruned one-shot with `spec`, or None when `spec`
        prunes nothing.
      metric: the metric of `pruned` (the base metric for None).
      tries: the `Try`s made.

    Returns:
      A `Suggestion`.
    """
    if result.structure == 'channel' and pruned is not None:
        # Groups pruned together share consumer slices: count the model
        # `shrink` builds rather than add up the scan's rows.
        shrunk = shrink(pruned)
        parameters = model.count_params() - shrunk.count_params()
        flops = cost.flops(model) - cost.flops(shrunk)
    else:
        parameters = sum(_gain(result, unit, sparsity, 'parameters')
                         for unit, sparsity in sparsities.items())
        flops = (None if result.flops is None else sum(
            _gain(result, unit, sparsity, 'flops')
            for unit, sparsity in sparsities.items()))
    return Suggestion(spec, sparsities, predicted_drop, metric,
                      result.base_metric - metric, parameters, flops,
                      tuple(tries))


def _gain(result, unit, sparsity, objective):
    if sparsity == 0:
        return 0
    row = next(r for r in result.rows
               if r.unit == unit and r.sparsity == sparsity)
    return (row.parameters_removed if objective == 'parameters'
            else row.flops_removed)

"""`scan`: how much each prunable weight (or channel group) can lose alone.

For each unit (a weight `prune` would mask, or a channel group of
`structure=channel`) and each sparsity, the unit alone is pruned one-shot with
the engine training uses (contrib's `update_mask` on |w|, or on the channel
criterion's scores), `evaluate(model)` is called, and the unit's weights are
put back. The model passed is evaluated as it is, with no wrapper: a unit is
pruned by assigning `mask * weight` to its variables for the call.
"""

import csv
import dataclasses
import io
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tf_prune.core import atomic
from tf_prune.core import hparams as hparams_lib
from tf_prune.core import masking
from tf_prune.core import schedule
from tf_prune.keras import _internals
from tf_prune.keras.prune import prune
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured import channels
from tf_prune.structured import cost
from tf_prune.structured import criteria
from tf_prune.structured import groups as groups_lib

DEFAULT_SPARSITIES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_FORMAT = 'tf_prune sensitivity scan 1'


@dataclasses.dataclass(frozen=True)
class Unit:
    """What one row prunes: a weight, or a channel group.

    Attributes:
      name: the weight's `<layer>/<weight>`, or the group's first producer.
      pattern: the `weight_sparsity_map` regex that selects it alone.
      parameters: its parameters (a group's: of its masked slices).
    """
    name: str
    pattern: str
    parameters: int


@dataclasses.dataclass(frozen=True)
class Row:
    """The metric with one unit pruned to one sparsity.

    Attributes:
      unit: the `Unit`'s name.
      sparsity: the unit's sparsity (of its weight, or of the group's
        removable channels).
      metric: what `evaluate` returned.
      parameters_removed: parameters pruned away (for channels: what
        `shrink` would remove, consumers' input slices included).
      flops_removed: FLOPs per example pruned away (see `cost`); None for a
        model whose graph cannot be read.
    """
    unit: str
    sparsity: float
    metric: float
    parameters_removed: int
    flops_removed: object


@dataclasses.dataclass
class ScanResult:
    """A scan's table.

    Attributes:
      structure: 'weight' or 'channel'.
      criterion: the channel criterion ('l1' for weights: |w|).
      sparsities: the sparsities scanned, ascending.
      base_metric: the metric of the model as given.
      units: the `Unit`s, in model order.
      rows: the `Row`s, unit by unit, sparsity by sparsity.
      parameters: the model's parameters.
      flops: its FLOPs per example, or None.
    """
    structure: str
    criterion: str
    sparsities: tuple
    base_metric: float
    units: list
    rows: list
    parameters: int
    flops: object

    def metric(self, unit, sparsity):
        """The metric of `unit` (a name) at `sparsity` (0: the base)."""
        if sparsity == 0:
            return self.base_metric
        return next(r.metric for r in self.rows
                    if r.unit == unit and r.sparsity == sparsity)

    def to_json(self, path):
        """Writes the result as JSON (whole or not at all)."""
        atomic.write_bytes(path, json.dumps(self._as_dict(), indent=1)
                           .encode())

    def _as_dict(self):
        return {'format': _FORMAT, 'structure': self.structure,
                'criterion': self.criterion,
                'sparsities': list(self.sparsities),
                'base_metric': self.base_metric,
                'parameters': self.parameters, 'flops': self.flops,
                'units': [dataclasses.asdict(u) for u in self.units],
                'rows': [dataclasses.asdict(r) for r in self.rows]}

    @classmethod
    def from_json(cls, path):
        """Reads a result `to_json` wrote.

        Raises:
          ValueError: the file is not a scan result.
        """
        try:
            with open(path) as file:
                data = json.load(file)
            if data.get('format') != _FORMAT:
                raise KeyError('format')
            return cls(data['structure'], data['criterion'],
                       tuple(data['sparsities']), data['base_metric'],
                       [Unit(**u) for u in data['units']],
                       [Row(**r) for r in data['rows']],
                       data['parameters'], data['flops'])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f'{path} is not a sensitivity scan result '
                             f'({error}); remove it or choose another '
                             f'results file') from None

    def to_csv(self, path):
        """Writes the rows as CSV, one per unit and sparsity."""
        text = io.StringIO()
        # csv quotes a unit name holding a comma or a quote (Keras allows
        # both in layer names); None FLOPs are written empty.
        writer = csv.writer(text, lineterminator='\n')
        writer.writerow(['unit', 'sparsity', 'metric', 'parameters_removed',
                         'flops_removed'])
        writer.writerows([r.unit, r.sparsity, r.metric, r.parameters_removed,
                          r.flops_removed] for r in self.rows)
        atomic.write_bytes(path, text.getvalue().encode())

    def plot(self, path):
        """Writes a PNG of the metric against sparsity, a line per unit."""
        # Imported here: only plotting needs it.
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use('Agg')
        from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
        figure, axis = pyplot.subplots(figsize=(8, 5))
        for unit in self.units:
            sparsities = [0.0] + list(self.sparsities)
            axis.plot(sparsities, [self.metric(unit.name, s)
                                   for s in sparsities], marker='.',
                      label=unit.name)
        axis.set_xlabel(f'sparsity of one {self._what()} alone')
        axis.set_ylabel('metric')
        axis.set_title(f'Sensitivity ({self.structure}, {self.criterion})')
        axis.grid(alpha=0.3)
        axis.legend(fontsize='small', ncol=2)
        figure.tight_layout()
        with atomic.atomic_output(path) as temporary:
            figure.savefig(temporary, format='png', dpi=100)
        pyplot.close(figure)

    def _what(self):
        return 'weight' if self.structure == 'weight' else 'channel group'

    def format_table(self):
        """The table as text: a row per unit (its parameters, then its
        metric at each sparsity); the base row holds the model's
        parameters and metric."""
        width = max([len('unit')] + [len(u.name) for u in self.units])
        header = f'{"unit":<{width}}  {"parameters":>10}  ' + '  '.join(
            f'{s:>7g}' for s in self.sparsities)
        lines = [header, f'{"(base)":<{width}}  {self.parameters:>10,}  '
                 f'{self.base_metric:>7.4f}']
        for unit in self.units:
            lines.append(f'{unit.name:<{width}}  {unit.parameters:>10,}  '
                         + '  '.join(f'{self.metric(unit.name, s):>7.4f}'
                                     for s in self.sparsities))
        return '\n'.join(lines)


def _check_sparsities(sparsities):
    values = tuple(float(s) for s in sparsities)
    if not values or any(not 0 < s < 1 for s in values) or (
            len(set(values)) != len(values)):
        raise ValueError(
            f'sparsities must be distinct values in (0, 1), such as 0.1, '
            f'0.5, 0.9; got {list(sparsities)}')
    return tuple(sorted(values))


def metric_of(evaluate, model):
    """`evaluate(model)` as a float, checked to be a finite scalar."""
    value = evaluate(model)
    try:
        value = float(np.asarray(value))
    except (TypeError, ValueError):
        raise ValueError(f'evaluate(model) must return a scalar metric, got '
                         f'{value!r}') from None
    if not np.isfinite(value):
        raise ValueError(f'evaluate(model) returned {value}; it must be a '
                         f'finite scalar metric')
    return value


class _WeightUnits:
    """The weights `prune` would mask, pruned alone by `update_mask`."""

    def __init__(self, model, hparams):
        pruned = prune(model, hparams)
        self._weights = {}
        for wrapper in find_wrappers(pruned):
            for p in wrapper.pruned_weights:
                self._weights.setdefault(p.name, p.weight)
        self._hparams = hparams
        self._positions = {}
        if _internals.is_graph_model(model):
            found = groups_lib.find_channel_groups(model)
            self._positions = cost.positions_by_variable(found)

    def units(self):
        return [Unit(name, f'^{name}$', int(np.prod(weight.shape)))
                for name, weight in self._weights.items()]

    def prune(self, name, sparsity):
        """Prunes one weight; returns `(restore, parameters, FLOPs)`."""
        weight = self._weights[name]
        original = weight.numpy()
        arguments = schedule.plan_weight(self._hparams, name).mask_arguments
        _, mask = masking.update_mask(original, sparsity, **arguments)
        mask = mask.numpy()
        weight.assign(original * mask)
        removed = int(mask.size - np.count_nonzero(mask))
        positions = self._positions.get(id(weight))
        flops = None if not self._positions else 2 * removed * (positions or 0)
        return (lambda: weight.assign(original)), removed, flops


class _ChannelUnits:
    """The channel groups of `structure=channel`, pruned alone."""

    def __init__(self, model, hparams):
        if hparams.channel_criterion == 'taylor':
            raise ValueError(
                'channel_criterion=taylor needs the gradients of training '
                'steps, which a one-shot scan has none of; scan with l1, l2 '
                'or bn_scale')
        self._hparams = hparams
        self._plan = channels.ChannelPlan(prune(model, hparams), hparams)
        self._groups = {plan.group.name: plan for plan in self._plan.groups
                        if criteria.can_score(hparams.channel_criterion, plan)}
        if not self._groups:
            # Only bn_scale leaves groups unscored: those with no
            # BatchNormalization. Refused here, before a caller writes
            # anything.
            raise ValueError(
                f'{model.name} has no channel group the '
                f'{hparams.channel_criterion} criterion can score (it ranks '
                f'channels by the gamma of a BatchNormalization in their '
                f'group, and no group has one); scan with l1 or l2')

    def units(self):
        return [Unit(name, f'^{plan.masked[0][0].name}$',
                     sum(int(np.prod(p.weight.shape)) for p, _ in plan.masked))
                for name, plan in self._groups.items()]

    def prune(self, name, sparsity):
        plan = self._groups[name]
        scores = criteria.score(self._hparams.channel_criterion, plan)
        _, mask = plan.update(scores, sparsity)
        originals = [(p.weight, p.weight.numpy()) for p, _ in plan.masked]
        for p, keep in plan.slice_keeps(mask):
            p.weight.assign(p.weight * channels.slice_mask(p, keep))
        masks = [mask if other is plan else tf.ones_like(other.state.mask)
                 for other in self._plan.groups]
        parameters, macs = self._plan.removed_cost(masks)

        def restore():
            for weight, value in originals:
                weight.assign(value)

        return restore, int(round(parameters)), int(round(2 * macs))


def _unit_source(model, hparams):
    if hparams.structure == 'weight':
        return _WeightUnits(model, hparams)
    return _ChannelUnits(model, hparams)


def units_of(model, hparams):
    """Every `Unit` a scan of `model` with `hparams`' structure has."""
    return _unit_source(model, hparams).units()


def scan(model, evaluate, sparsities=DEFAULT_SPARSITIES, structure='weight',
         criterion='l1', layers=None, results_path=None, verbose=1):
    """Prunes each weight (or channel group) alone at each sparsity, and
    evaluates.

    Args:
      model: a built Keras model, not pruned (channel scans: Sequential or
        Functional). It is left exactly as given.
      evaluate: a function from the model to a scalar metric, higher is
        better (say, test accuracy).
      sparsities: the sparsities to try, each in (0, 1).
      structure: 'weight' (each weight `prune` masks) or 'channel' (each
        channel group with removable channels).
      criterion: for channels, the `channel_criterion` ranking them ('l1',
        'l2' or 'bn_scale').
      layers: names of units to scan (weights `<layer>/<weight>`, or groups
        by their first producer), or None for all.
      results_path: a JSON file the result is written to after each row; a
        scan finding a file of the same scan there (the same units,
        sparsities and base metric) continues from it.
      verbose: 1 shows a progress bar, 0 nothing.

    Returns:
      A `ScanResult`.

    Raises:
      ValueError: bad sparsities, structure, criterion or layers; nothing
        to prune (for bn_scale: no group with a BatchNormalization);
        `evaluate` not returning a finite scalar; a results file of another
        scan.
    """
    sparsities = _check_sparsities(sparsities)
    hparams = hparams_lib.as_hparams(
        f'structure={structure},channel_criterion={criterion}')
    unit_source = _unit_source(model, hparams)
    units = unit_source.units()
    if layers is not None:
        unknown = sorted(set(layers) - {u.name for u in units})
        if unknown:
            raise ValueError(
                f'layers {unknown} are not units of this scan; choose from '
                f'{", ".join(u.name for u in units)}')
        units = [u for u in units if u.name in set(layers)]
    if not units:
        raise ValueError(f'{model.name} has nothing to scan with '
                         f'structure={structure}')
    result = _resumed(results_path, structure, criterion, sparsities, units)
    if result is not None:
        base = metric_of(evaluate, model)
        if base != result.base_metric:
            raise ValueError(
                f'{results_path} holds the scan of another model or data: '
                f'its base metric is {result.base_metric}, this one\'s '
                f'{base}; remove it or choose another results file')
    else:
        flops = (cost.flops(model) if _internals.is_graph_model(model)
                 else None)
        result = ScanResult(structure, criterion, sparsities,
                            metric_of(evaluate, model), units, [],
                            int(model.count_params()), flops)
    done = {(r.unit, r.sparsity) for r in result.rows}
    grid = [(u.name, s) for u in units for s in sparsities]
    progress = keras.utils.Progbar(len(grid), verbose=verbose,
                                   stateful_metrics=['metric'])
    progress.update(len(done))
    for name, sparsity in grid:
        if (name, sparsity) in done:
            continue
        restore, parameters, flops = unit_source.prune(name, sparsity)
        try:
            metric = metric_of(evaluate, model)
        finally:
            restore()
        result.rows.append(Row(name, sparsity, metric, parameters, flops))
        if results_path:
            result.to_json(results_path)
        progress.add(1, [('metric', metric)])
    order = {key: index for index, key in enumerate(grid)}
    result.rows.sort(key=lambda r: order[(r.unit, r.sparsity)])
    return result


def _resumed(path, structure, criterion, sparsities, units):
    """The partial result at `path` of the same scan, or None."""
    if not path or not os.path.exists(path):
        return None
    result = ScanResult.from_json(path)
    if (result.structure, result.criterion, result.sparsities,
            result.units) != (structure, criterion, sparsities, units):
        raise ValueError(
            f'{path} holds another scan (structure, criterion, sparsities or '
            f'units differ); remove it or choose another results file')
    return result

"""The paired statistic of train_overhead.py, with no TensorFlow and no flags.

A model's time in a round is divided by the reference model's time in the
same round: ratio_r = time[r] / reference[r]. A slow spell of the machine
during round r lengthens both, so it moves ratio_r far less than either
time. The summary of a model is the median of ratio_r over the rounds, its
interquartile range (25th and 75th percentiles, numpy's linear
interpolation), its minimum and maximum, and the number of rounds.
"""

import numpy as np


def round_ratios(times, reference):
    """[times[r] / reference[r] for each round r]."""
    if len(times) != len(reference):
        raise ValueError(f'{len(times)} rounds against {len(reference)}')
    return [t / ref for t, ref in zip(times, reference)]


def summarize(ratios):
    """{rounds, median, p25, p75, min, max} of the per-round ratios."""
    p25, median, p75 = np.percentile(ratios, [25, 50, 75])
    return {'rounds': len(ratios), 'median': float(median),
            'p25': float(p25), 'p75': float(p75),
            'min': float(min(ratios)), 'max': float(max(ratios))}


def summary_rows(round_ms, steps_per_round, reference):
    """train_overhead.py's rows from each model's per-round milliseconds.

    Args:
      round_ms: {model name: [its milliseconds in each round]}.
      steps_per_round: training steps per model per round.
      reference: the name of the model the others are divided by.

    Returns:
      One dict per model, in `round_ms`'s order: `rounds`, `mean_step_ms`
      (total / steps) and `ratio_of_means`; for the others than `reference`
      also `ratio_median`, `ratio_p25`, `ratio_p75`, `ratio_min` and
      `ratio_max` of `summarize(round_ratios(...))`.
    """
    base = round_ms[reference]
    base_mean = sum(base) / (len(base) * steps_per_round)
    rows = []
    for name, times in round_ms.items():
        mean = sum(times) / (len(times) * steps_per_round)
        row = {'model': name, 'rounds': len(times),
               'mean_step_ms': round(mean, 2),
               'ratio_of_means': round(mean / base_mean, 3)}
        if name != reference:
            summary = summarize(round_ratios(times, base))
            row.update({f'ratio_{key}': round(value, 4)
                        for key, value in summary.items() if key != 'rounds'})
        rows.append(row)
    return rows

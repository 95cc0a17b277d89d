"""Writes docs/benchmarks.md from the JSON files in benchmarks/results/.

The page is a function of those files alone: the same JSON gives the same
bytes. The benchmarks print their tables with the functions here.

Usage: python benchmarks/render_docs.py
"""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, 'benchmarks', 'results')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
RESULT_FILES = ('mask_update.json', 'train_overhead.json',
                'fashion_mnist_vs_tfmot.json',
                'fashion_mnist_vs_tfmot_target_0.9.json')
PLOT = '../benchmarks/results/fashion_mnist_vs_tfmot.png'

MASK_UPDATE_HEADER = (
    '| elements | sparsity | update_mask ms | top_k ms | reduce_max ms '
    '| top_k / update_mask | update_mask / reduce_max | identical |\n'
    '|---:|---:|---:|---:|---:|---:|---:|:---:|')


def mask_update_row(row):
    """One row of mask_update.py's table."""
    return (f"| {row['elements']:,} | {row['sparsity']} | "
            f"{row['update_mask_ms']:.1f} | {row['top_k_ms']:.0f} | "
            f"{row['reduce_max_ms']:.1f} | "
            f"{row['top_k_ms'] / row['update_mask_ms']:.0f}x | "
            f"{row['update_mask_ms'] / row['reduce_max_ms']:.2f}x | "
            f"{'yes' if row['identical'] else 'NO'} |")


def train_overhead_table(result):
    """train_overhead.py's table: the paired ratios (when recorded), means."""
    paired = any('ratio_median' in row for row in result['rows'])
    keys = ('median', 'p25', 'p75', 'min', 'max') if paired else ()
    lines = ['| model | rounds | '
             + ('median ratio to dense | 25th pct | 75th pct | min | max | '
                if paired else '')
             + 'mean step (ms) | ratio of means | mask updates timed |',
             '|---|' + '---:|' * (4 + len(keys))]
    for row in result['rows']:
        # Older files name the ratio of means ratio_to_dense.
        ratio_of_means = row.get('ratio_of_means', row.get('ratio_to_dense'))
        cells = [row['model'], row.get('rounds', result['rounds']),
                 *(format(row[f'ratio_{key}'], '.3f')
                   if f'ratio_{key}' in row else '-' for key in keys),
                 format(row['mean_step_ms'], '.1f'),
                 format(ratio_of_means, '.3f'), row.get('mask_updates', '-')]
        lines.append('| ' + ' | '.join(map(str, cells)) + ' |')
    return '\n'.join(lines)


def fashion_table(rows):
    """fashion_mnist_vs_tfmot.py's table; rows[0] is dense."""
    dense = rows[0]
    lines = [
        '| library | target | test accuracy | vs dense (points) | mean step '
        '(ms) | step ratio | final sparsity | TFLite bytes | gzipped | sparse '
        'TFLite bytes | sparse vs dense TFLite | sparse gzipped |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        lines.append(
            f"| {row['library']} | {row['target_sparsity']:g} | "
            f"{100 * row['test_accuracy']:.2f}% | "
            f"{100 * (row['test_accuracy'] - dense['test_accuracy']):+.2f} | "
            f"{row['mean_step_ms']:.1f} | {row['step_ratio']:.3f} | "
            f"{row['final_sparsity']:.4f} | {row['tflite_bytes']:,} | "
            f"{row['tflite_gzipped_bytes']:,} | "
            f"{row['sparse_tflite_bytes']:,} | "
            f"{row['sparse_tflite_bytes'] / dense['tflite_bytes']:.3f}x | "
            f"{row['sparse_tflite_gzipped_bytes']:,} |")
    return '\n'.join(lines)


def _rounds(count):
    return f'{count} round' + ('' if count == 1 else 's')


def _machine(name, result):
    if result is None:
        return f'- `{name}`: no results'
    machine = result.get('machine')
    if machine is None:
        return f'- `{name}`: machine not recorded'
    accelerators = ', '.join(machine['accelerators']) or 'no accelerator'
    return (f"- `{name}`: {machine['cpu_count']} CPUs "
            f"({machine['cpu_model']}), {accelerators}, "
            f"TensorFlow {machine['tensorflow']}")


def _mask_update(result):
    text = [
        '## update_mask against a sort',
        '',
        '`benchmarks/mask_update.py` times three functions, each a '
        '`tf.function` on a float32 weight already in memory, for 1M, 4M and '
        '16M elements at sparsity 0.5 and 0.9, in one process:',
        '',
        "- update_mask: tf_prune's exact threshold and mask, a radix select "
        '(two histogram passes over the weight, one more to write the mask);',
        "- top_k: contrib r1.15's algorithm, which sorts all of `|w|` with "
        '`top_k` and reads the k-th value;',
        '- reduce_max: one `reduce_max(abs(w))` pass, the memory-bandwidth '
        'floor.',
        '']
    if result is None:
        return text + ['No results: `python benchmarks/mask_update.py` '
                       'writes `benchmarks/results/mask_update.json`.']
    return text + [
        f"update_mask and reduce_max alternate round by round "
        f"({_rounds(result['rounds'])}); top_k runs after them in "
        f"{_rounds(result['top_k_rounds'])} of its own. The table gives the "
        f"median milliseconds of each and the ratios of those medians. "
        f"Identical: update_mask's threshold and mask equal top_k's.",
        '', MASK_UPDATE_HEADER,
        *(mask_update_row(row) for row in result['rows'])]


def _train_overhead(result):
    text = [
        "## Pruning's cost per training step",
        '',
        "`benchmarks/train_overhead.py` trains the CNN of tfmot's MNIST "
        'example (Conv 32@5x5, max-pool, batch norm, Conv 64@5x5, max-pool, '
        'Dense 1024, dropout 0.4, Dense 10; the Dense 1024 kernel has 3.2M '
        'weights) on random 28x28x1 inputs with Adam on the CPU: dense, and '
        'pruned with `PruningCallback` towards 0.9 from step 0 at '
        '`pruning_frequency` 10 and 100. The three copies train in one '
        'process.',
        '']
    if result is None:
        return text + ['No results: `python benchmarks/train_overhead.py` '
                       'writes `benchmarks/results/train_overhead.json`.']
    if 'round_ms' not in result:
        return text + [
            f"The results file records {result['timed_steps']:,} timed steps "
            f"per model, batch {result['batch']}, over "
            f"{_rounds(result['rounds'])}, and each model's mean step time "
            f"(total time / steps, mask-update steps included) with its ratio "
            f"to dense's. It holds no per-round times, so the paired ratio is "
            f"not given.",
            '', train_overhead_table(result)]
    steps = result['steps_per_round']
    order = '; '.join(result['turn_order'])
    return text + [
        f"Batch {result['batch']}; after {result['warmup_steps']} untimed "
        f"steps each, {_rounds(result['rounds'])} of {steps} steps per model. "
        f"A round is cut into turns of {result['steps_per_turn']} steps, one "
        f"`fit` call each, in the order {order} (reversed every other "
        f"turn), so every turn of a pruned model is next to a turn of dense. "
        f"A model's time in a round is the sum of its step times in that "
        f"round. A step is timed from `on_train_batch_begin` to "
        f"`on_train_batch_end` of a callback listed after `PruningCallback`: "
        f"the time includes `PruningCallback`'s `on_train_batch_end`, which "
        f"decides whether the masks are due and updates them, and leaves out "
        f"the start of each `fit` call.",
        '',
        f"For each pruned model and each round r, ratio_r = (the model's "
        f"time in round r) / (dense's time in round r). A slow spell of the "
        f"machine during round r lengthens both sides. The median ratio is "
        f"the median of ratio_r over the {_rounds(result['rounds'])}, given "
        f"with its 25th and 75th percentiles, minimum and maximum. The mean "
        f"step is the total time over all {result['timed_steps']:,} timed "
        f"steps divided by the steps; the ratio of means divides it by "
        f"dense's mean step. Every round holds the same number of mask "
        f"updates: {steps // 10} at frequency 10 and {steps // 100} at "
        f"frequency 100. The per-round times and ratios are in the results "
        f"file.",
        '', train_overhead_table(result)]


def _fashion(results):
    main = results['fashion_mnist_vs_tfmot.json']
    text = [
        '## tf_prune against tfmot on Fashion-MNIST',
        '',
        "`benchmarks/fashion_mnist_vs_tfmot.py` trains the CNN above (3.3M "
        'weights) on Fashion-MNIST with Adam: dense, then tf_prune and tfmot '
        'at each target sparsity, both on the same schedule: polynomial from '
        '0 to the target over the first two thirds of the steps, a mask '
        'update at a fixed frequency, none after. tf_prune gets it as '
        'contrib hparams, tfmot as `PolynomialDecay` on tf_keras. Both read '
        'the same tf.data pipeline (full batches, reshuffled each epoch, '
        'seed 0).',
        '',
        'Each run is its own process. All start, load and build, then train '
        'in turns of a fixed number of steps, one at a time, round-robin, '
        'until all are trained; evaluation and TFLite conversion follow, one '
        'at a time. The mean step is over every step but the first (which '
        'traces the step function), mask updates included, timed from the '
        "first callback's `on_train_batch_begin` to the last one's "
        "`on_train_batch_end`; the step ratio divides it by dense's mean "
        'step. Test accuracy is on the 10,000 test images, one seed per run. '
        'Final sparsity is over the four pruned kernels of the stripped '
        'model. TFLite bytes are of the stripped model, converted plain and '
        'sparse-encoded (`EXPERIMENTAL_SPARSITY`), each also gzipped.']
    for name in RESULT_FILES[2:]:
        result = results[name]
        text += ['', f'### `{name}`', '']
        if result is None:
            text.append('No results.')
            continue
        targets = ', '.join(f'{target:g}' for target in sorted(
            {row['target_sparsity'] for row in result['rows'][1:]}))
        turns = (f"turns of {result['turn_steps']} steps"
                 if 'turn_steps' in result else
                 'turns (their length is not recorded)')
        tfmot = f"tfmot {result['tfmot_version']}" if (
            'tfmot_version' in result) else 'tfmot'
        text += [
            f"Dense, then tf_prune and {tfmot} at target {targets}; "
            f"{result['epochs']} epochs ({result['steps']:,} steps) per run, "
            f"batch {result['batch']}, in {turns}. Schedule: steps 0 to "
            f"{result['schedule_end_step']:,}, exponent {result['exponent']}, "
            f"a mask update every {result['frequency']} steps.",
            '', fashion_table(result['rows'])]
        if result is main:
            text += ['', '![Test accuracy against final sparsity, tf_prune '
                     f'and tfmot]({PLOT})']
    return text


def render(results_dir=RESULTS_DIR):
    """The text of docs/benchmarks.md from the JSON files in results_dir."""
    results = {}
    for name in RESULT_FILES:
        path = os.path.join(results_dir, name)
        if os.path.exists(path):
            with open(path) as file:
                results[name] = json.load(file)
        else:
            results[name] = None
    lines = [
        '<!-- Generated by benchmarks/render_docs.py from '
        'benchmarks/results/*.json; do not edit. -->',
        '',
        '# Benchmarks',
        '',
        '`make bench` runs the three benchmarks below, each writing its '
        'figures to `benchmarks/results/`, then `benchmarks/render_docs.py`, '
        'which writes this page from them. All run on the CPU. The machine '
        'of each results file:',
        '',
        *(_machine(name, result) for name, result in results.items()),
        '',
        *_mask_update(results['mask_update.json']),
        '',
        *_train_overhead(results['train_overhead.json']),
        '',
        *_fashion(results)]
    return '\n'.join(lines) + '\n'


def main():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from tf_prune.core import atomic  # pylint: disable=import-outside-toplevel
    atomic.write_bytes(DOC, render().encode())
    print(f'wrote {os.path.relpath(DOC)}')


if __name__ == '__main__':
    main()

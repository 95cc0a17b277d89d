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
FASHION_FILES = ('fashion_mnist_vs_tfmot.json',
                 'fashion_mnist_vs_tfmot_target_0.9.json')
RESULT_FILES = ('mask_update.json', 'train_overhead.json', *FASHION_FILES,
                'structured_speed.json', 'sensitivity.json',
                'channel_criteria.json')
PLOT = '../benchmarks/results/fashion_mnist_vs_tfmot.png'
STRUCTURED_PLOT = '../benchmarks/results/structured_speed.png'
SENSITIVITY_PLOT = '../benchmarks/results/sensitivity.png'
# structured_speed.py's latency settings: result key, title.
STRUCTURED_SETTINGS = (('tf_batch_1', 'TF batch 1'),
                       ('tf_batch_32', 'TF batch 32'),
                       ('litert_threads_1', 'LiteRT 1 thread'),
                       ('litert_threads_2', 'LiteRT 2 threads'))

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
    for name in FASHION_FILES:
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


def _si(value):
    """1234567 -> '1.23 M'."""
    for scale, unit in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if value >= scale:
            return f'{value / scale:.3g} {unit}'
    return f'{value:g}'


def _ms(value):
    """Milliseconds to 3 or 4 significant figures (0.0812, 5.83, 412.6)."""
    digits = 3 if value < 1 else 2 if value < 100 else 1
    return f'{value:.{digits}f}'


def _sparsity_cell(row):
    return 'dense' if row['label'] == 'dense' else f"{row['sparsity']:g}"


def structured_speed_tables(result):
    """structured_speed.py's two tables: sizes, then latencies."""
    sizes = [
        '| model | channel sparsity | channels removed | parameters | '
        'vs dense | FLOPs | vs dense | .tflite bytes | vs dense | '
        'shrunk vs zeroed: outputs | logits | LiteRT vs Keras |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    latency = [
        '| model | channel sparsity | '
        + ' | '.join(f'{title} ms | ratio (IQR)'
                     for _, title in STRUCTURED_SETTINGS) + ' |',
        '|---|---:|' + '---:|' * (2 * len(STRUCTURED_SETTINGS))]
    for model in result['models']:
        dense = model['rows'][0]
        for row in model['rows']:
            shrunk = row['label'] != 'dense'
            removed = (f"{row['channels_removed']:,} of "
                       f"{model['removable_channels']:,}" if shrunk else '-')
            zeroed = ' | '.join(
                format(row[f'max_difference_to_zeroed_{what}'], '.1e')
                if shrunk else '-' for what in ('outputs', 'logits'))
            sizes.append(
                f"| {model['model']} | {_sparsity_cell(row)} | {removed} | "
                f"{row['params']:,} | {row['params'] / dense['params']:.3f} | "
                f"{_si(row['flops'])} | {row['flops'] / dense['flops']:.3f} | "
                f"{row['tflite_bytes']:,} | "
                f"{row['tflite_bytes'] / dense['tflite_bytes']:.3f} | "
                f"{zeroed} | {row['litert_max_difference']:.1e} |")
            cells = []
            for setting, _ in STRUCTURED_SETTINGS:
                figures = model['settings'][setting]['by_model'][row['label']]
                cells.append(_ms(figures['median_ms']))
                cells.append(
                    f"{figures['ratio_median']:.3f} "
                    f"({figures['ratio_p25']:.3f}-{figures['ratio_p75']:.3f})"
                    if shrunk else '1')
            latency.append(f"| {model['model']} | {_sparsity_cell(row)} | "
                           + ' | '.join(cells) + ' |')
    return '\n'.join(sizes) + '\n\n' + '\n'.join(latency)


def structured_goal(result):
    """One line: the goal of issue 13 against the measured ratios."""
    goal = result.get('goal')
    if goal is None:
        return 'Goal: not measured (ResNet50 at 0.5 was not run).'
    titles = dict(STRUCTURED_SETTINGS)
    parts = [f"{titles[setting]} {ratio:.3f} "
             f"({'met' if goal['met'][setting] else 'not met'})"
             for setting, ratio in goal['ratios'].items()]
    verdict = 'met' if all(goal['met'].values()) else 'not met'
    return (f"Goal (issue 13): shrunk/dense latency <= "
            f"{goal['max_ratio']:.2f} at {goal['sparsity']:g} on "
            f"{goal['model']}, in LiteRT (batch 1) and TensorFlow (batch 32): "
            f"{verdict}. Measured: " + '; '.join(parts) + '.')


def _structured_speed(result):
    text = [
        '## Channel removal: size and speed',
        '',
        '`benchmarks/structured_speed.py` removes channels one-shot by L1 '
        'score and measures what it buys. Models: `keras.applications` '
        'ResNet50 and MobileNetV2 (`weights=None`, 1000 classes) on 160x160x3 '
        'inputs, and the Fashion-MNIST CNN of `examples/fashion_mnist_cnn.py` '
        '(28x28x1), each built with seed 0, biases and BatchNormalization '
        'vectors drawn from U(0.5, 1.5). For each channel sparsity s, '
        '`keep_top(find_channel_groups(model), s)` picks the lowest-L1 '
        "fraction s (rounded down) of every group's channels, never fixed "
        "ones (the classifier's outputs), and `shrink` removes them. All "
        'models run in one process.',
        '',
        "Shrunk vs zeroed: the shrunk model's largest output difference from "
        'a copy of the dense model with the same channels zeroed '
        '(`zero_channels`), on two inputs, over the zeroed output range, and '
        "the same for the logits (the last Dense layer's output before its "
        'softmax, which saturates on random-weight ResNet50); the script '
        'stops above 1e-5, so each speed is that of an equivalent model. '
        "LiteRT vs Keras: the `.tflite` file's output (after the softmax) "
        "against the Keras model's on one input, over the output range. "
        'FLOPs are per '
        'example: 2 x the multiply-accumulates of the Conv, Conv*Transpose, '
        'DepthwiseConv, SeparableConv and Dense layers, from their shapes; '
        'biases, BatchNormalization, activations, pooling and adds are not '
        'counted. `.tflite` bytes are of `tf_prune.export.tflite(model, path, '
        'sparse=False)` (float32).',
        '']
    if result is None:
        return text + ['No results: `python benchmarks/structured_speed.py` '
                       'writes `benchmarks/results/structured_speed.json`.']
    order = ', '.join(result['turn_order'])
    per_turn = '; '.join(
        f"{model['model']}: " + ', '.join(
            f"{title} {model['settings'][setting]['calls_per_turn']}"
            for setting, title in STRUCTURED_SETTINGS)
        for model in result['models'])
    cores = (result.get('machine') or {}).get('cpu_count', '?')
    cpu = '; '.join(
        f"{model['model']}: " + ', '.join(
            f"{title} {model['settings'][setting]['cpu_per_wall']:.2f}"
            for setting, title in STRUCTURED_SETTINGS)
        for model in result['models'])
    threads = '; '.join(
        f"{model['model']} "
        + format(model['settings']['litert_threads_2']['by_model']['dense']
                 ['median_ms']
                 / model['settings']['litert_threads_1']['by_model']['dense']
                 ['median_ms'], '.2f')
        for model in result['models'])
    load = ', '.join(f'{v:g}' for v in result['load_average_start'])
    load_end = ', '.join(f'{v:g}' for v in result['load_average_end'])
    return text + [
        f"Latency: TensorFlow `predict_on_batch` on batch "
        f"{' and '.join(map(str, result['tf_batches']))} (TensorFlow's "
        f"default threads), and LiteRT's `Interpreter` with its default "
        f"XNNPACK delegate on batch 1 with `num_threads` "
        f"{' and '.join(map(str, result['litert_threads']))} (`invoke` only, "
        f"the input set once). The dense model and its shrunk copies are "
        f"timed side by side: {result['warmup']} untimed calls each, then "
        f"{_rounds(result['rounds'])}, each a turn of N "
        f"consecutive calls per model in the order {order}, reversed every "
        f"other round. N is the same for all models of a setting: "
        f"{result['turn_seconds']:g} s over the dense model's median "
        f"warm-up call time (the first call left out), at least 1 "
        f"({per_turn}). A model's time in a round is the "
        f"median of its turn's calls; ratio_r = (shrunk time in round r) / "
        f"(dense time in round r). The ms columns are the median of all of a "
        f"model's timed calls; the ratio is the median of ratio_r over the "
        f"rounds, with its 25th and 75th percentiles. Load average (1, 5, 15 "
        f"min) at the start: {load}; at the end: {load_end}. The run took "
        f"{result['seconds']:.0f} s.",
        '',
        f"Dense LiteRT latency with 2 threads over 1 thread: {threads}. "
        f"The process's CPU seconds (all threads) per wall second of each "
        f"setting's timed rounds, up to {cores} on this machine: {cpu}.",
        '', 'Channels never removed (`describe_unprunable`):',
        '', *(f"- {model['model']}: {model['channel_groups']} groups, "
              f"{model['channels']:,} channels; {model['unprunable']}"
              for model in result['models']),
        '', structured_goal(result),
        '', structured_speed_tables(result),
        '', '![Latency ratio shrunk/dense against channel sparsity, with the '
        f'FLOPs ratio]({STRUCTURED_PLOT})']


def _percent(value):
    return f'{100 * value:.2f}%'


def sensitivity_table(result):
    """sensitivity.py's table: per part, dense, suggested and uniform."""
    lines = [
        '| model | pruning | parameters | vs dense | one-shot validation | '
        'one-shot test | fine-tuned test | parameters after fine-tuning |',
        '|---|---|---:|---:|---:|---:|---:|---:|']
    for part in result['parts']:
        dense = part['rows'][0]['parameters']
        uniform = f"uniform {part['uniform']['target_sparsity']:.4f}"
        for row in part['rows']:
            name = {'dense': 'dense', 'suggested': 'suggested map',
                    'uniform': uniform}[row['name']]
            lines.append(
                f"| {part['model']} | {part['structure']}: {name} | "
                f"{row['parameters']:,} | {row['parameters'] / dense:.3f} | "
                f"{_percent(row['one_shot_validation_accuracy'])} | "
                f"{_percent(row['one_shot_test_accuracy'])} | "
                f"{_percent(row['fine_tuned_test_accuracy'])} | "
                f"{row['fine_tuned_parameters']:,} |")
    return '\n'.join(lines)


def sensitivity_goal(part):
    """One line: issue 14's goal for one part, and what fine-tuning left."""
    rows = {row['name']: row for row in part['rows']}
    suggested, uniform = rows['suggested'], rows['uniform']
    gain = (suggested['one_shot_test_accuracy']
            - uniform['one_shot_test_accuracy'])
    after = (suggested['fine_tuned_test_accuracy']
             - uniform['fine_tuned_test_accuracy'])
    verdict = 'met' if gain > 0 else 'not met'
    return (f"- {part['model']} ({part['structure']}): one-shot test accuracy "
            f"{_percent(suggested['one_shot_test_accuracy'])} suggested "
            f"against {_percent(uniform['one_shot_test_accuracy'])} uniform "
            f"({100 * gain:+.2f} points): {verdict}. After fine-tuning: "
            f"{_percent(suggested['fine_tuned_test_accuracy'])} against "
            f"{_percent(uniform['fine_tuned_test_accuracy'])} "
            f"({100 * after:+.2f} points).")


def _sensitivity(result):
    text = [
        '## Sensitivity scan: the suggested map against uniform pruning',
        '',
        '`benchmarks/sensitivity.py` measures what `tf_prune.sensitivity` '
        "suggests ([guide](sensitivity.md)). Fashion-MNIST's 60,000 training "
        'images are split: the last ones are held out as a validation split, '
        'the others train; the test set serves only the figures below. Each '
        'model trains dense (Adam 1e-3, batch 128, seed 0), then `scan` '
        'prunes each unit alone, one-shot, at each scanned sparsity and '
        'measures validation accuracy, and `suggest` picks per-unit '
        'sparsities (a `weight_sparsity_map`) removing the most parameters '
        'within a one-shot validation drop of `max_drop`. Uniform pruning '
        '(one `target_sparsity` for all units) is matched to the '
        "suggestion's parameters by `uniform_like`: parameters less the "
        'zeros of the pruned weights (`structure=weight`), or those of the '
        'shrunk model (`structure=channel`). Both are measured one-shot, '
        'then after the same fine-tuning (a fresh Adam 1e-3 on the same '
        'batches, `PruningCallback` holding the target: `initial_sparsity` '
        'equal to `target_sparsity`, a mask update every 100 steps), as is '
        'the dense model trained on for as many epochs.',
        '']
    if result is None:
        return text + ['No results: `python benchmarks/sensitivity.py` '
                       'writes `benchmarks/results/sensitivity.json`.']
    parts = []
    for part in result['parts']:
        sparsities = ', '.join(f'{s:g}' for s in part['sparsities'])
        parts.append(
            f"- {part['model']}, `structure={part['structure']}` "
            f"(criterion {part['criterion']}): {part['train_epochs']} "
            f"epochs on {part['train_examples']:,} images, scanned at "
            f"{sparsities} on {part['validation_examples']:,} held-out "
            f"images, `max_drop` {part['max_drop_points']:g} point(s); "
            f"{part['fine_tune_epochs']} fine-tuning epoch(s). Suggested "
            f"(one-shot validation drop "
            f"{100 * part['suggestion']['drop']:.2f} points, the scan "
            f"predicted {100 * part['suggestion']['predicted_drop']:.2f}): "
            f"`{part['suggestion']['spec']}`.")
    quick = (' A smoke run (`--quick`): 6,000 training and 2,000 test '
             'images.' if result.get('quick') else '')
    return text + [
        *parts, '',
        f"The run took {result['seconds']:.0f} s.{quick} Goal (issue 14): "
        f"at equal parameters, the suggested map's one-shot test accuracy "
        f"beats uniform's.", '',
        *(sensitivity_goal(part) for part in result['parts']), '',
        sensitivity_table(result), '',
        '![Each unit\'s validation accuracy pruned alone, the suggested '
        f'sparsities circled, uniform\'s dashed]({SENSITIVITY_PLOT})']


def _points(value):
    return f'{100 * value:+.2f}'


def _count(number, noun):
    """'1 dense epoch', '2 dense epochs'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def channel_criteria_table(result):
    """channel_criteria.py's table: the dense baseline, then every run."""
    dense = result['dense']
    lines = [
        '| channel sparsity | run | schedule | test accuracy | vs dense '
        '(points) | channels masked | parameters | vs dense | FLOPs | '
        'vs dense | seconds |',
        '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
        f"| 0 | dense | trained on, unpruned | "
        f"{100 * dense['test_accuracy']:.2f}% | - | - | "
        f"{dense['params']:,} | 1 | {_si(dense['flops'])} | 1 | "
        f"{dense['seconds']:.0f} |"]
    for row in result['rows']:
        lines.append(
            f"| {row['sparsity']:g} | {row['label']} | {row['schedule']} | "
            f"{100 * row['test_accuracy']:.2f}% | "
            f"{_points(row['test_accuracy'] - dense['test_accuracy'])} | "
            f"{row['channels_masked']:.4f} | {row['params']:,} | "
            f"{row['params'] / dense['params']:.3f} | {_si(row['flops'])} | "
            f"{row['flops'] / dense['flops']:.3f} | {row['seconds']:.0f} |")
    return '\n'.join(lines)


def _span(rows):
    """'from 89.12% (taylor) to 89.80% (l1), 0.68 points'."""
    low = min(rows, key=lambda row: row['test_accuracy'])
    high = max(rows, key=lambda row: row['test_accuracy'])
    spread = 100 * (high['test_accuracy'] - low['test_accuracy'])
    return (f"from {100 * low['test_accuracy']:.2f}% ({low['label']}) to "
            f"{100 * high['test_accuracy']:.2f}% ({high['label']}), "
            f"{spread:.2f} points")


def channel_criteria_summary(result):
    """Per sparsity: the spread over the criteria, random against the best
    of them, the spread over the schedules, the noise run."""
    lines = []
    for sparsity in sorted({row['sparsity'] for row in result['rows']}):
        rows = [row for row in result['rows'] if row['sparsity'] == sparsity]
        criteria = [row for row in rows if row['kind'] == 'criterion'
                    and row['criterion'] != 'random']
        parts = []
        if criteria:
            parts.append(f'the {len(criteria)} criteria on the example\'s '
                         f'schedule range {_span(criteria)}')
            best = max(row['test_accuracy'] for row in criteria)
            for row in rows:
                if row['criterion'] == 'random':
                    parts.append(
                        f"random ranking {100 * row['test_accuracy']:.2f}% "
                        f"({_points(row['test_accuracy'] - best)} points "
                        f"from the best criterion)")
        schedules = [row for row in rows if row['kind'] == 'schedule']
        if schedules:
            l1 = [row for row in criteria if row['label'] == 'l1']
            parts.append(f'l1 on the {len(l1 + schedules)} schedules ranges '
                         f'{_span(l1 + schedules)}')
        for row in rows:
            if row['kind'] == 'noise':
                same = [r for r in criteria if r['criterion'] ==
                        row['criterion'] and r['bn_l1_penalty'] ==
                        row['bn_l1_penalty']]
                if same:
                    change = row['test_accuracy'] - same[0]['test_accuracy']
                    parts.append(
                        f"{row['label']}: {100 * row['test_accuracy']:.2f}% "
                        f"({_points(change)} points from the same run on the "
                        f"example's shuffling: the noise of one run)")
        lines.append(f'- At channel sparsity {sparsity:g}: '
                     + '; '.join(parts) + '.')
    return '\n'.join(lines)


def _channel_criteria(result):
    text = [
        '## Channel criteria and schedules',
        '',
        '`benchmarks/channel_criteria.py` compares the channel criteria of '
        '`structure=channel` on the ResNet of '
        '`examples/fashion_mnist_channels.py` (`resnet()`: a Conv+BN+ReLU '
        'stem, three residual blocks, global average pooling, a Dense '
        'softmax) on Fashion-MNIST, with that example\'s training: epochs '
        'of dense training (Adam at the example\'s `--learning_rate`), then '
        'a phase of pruning and fine-tuning with a fresh Adam whose rate '
        'decays from that rate to 0 '
        '(cosine). The dense phase runs once; every run starts from its '
        'weights and trains the phase on the same batches in the same order, '
        'in one process. The dense baseline trains the phase on unpruned: '
        'the same epochs in all. Each pruned model is shrunk '
        '(`tf_prune.shrink`); its test accuracy (10,000 images), parameters '
        'and FLOPs (`tf_prune.structured.cost`: 2 x the multiply-accumulates '
        'of the Conv and Dense layers) are given.',
        '',
        'Criteria (`channel_criterion`), on the example\'s schedule with '
        '`PruningCallback`: l1 and l2 (the norm of each filter), bn_scale '
        '(|gamma| of the BatchNorm after it), the same with '
        '`bn_l1_penalty` (network slimming\'s L1 penalty on the BatchNorm '
        'scales, during the pruning phase only), taylor (first-order Taylor '
        'estimate accumulated over the steps between updates), and random: '
        'a `ChannelPruning` subclass whose `channel_scores` are a fixed '
        'random vector per group. At the first sparsity, l1 also runs on '
        'other schedules: one-shot (masked at the target before the phase, '
        'then fine-tuned through it), short (the schedule ending at half its '
        'end step), late (ending at 90% of the phase, masks updated to its '
        'end), updated to the end (the example\'s schedule with '
        '`end_pruning_step=-1`, so masks may still change after they reach '
        'the target); and l1 once more with another shuffling seed of the '
        'phase, whose difference from the l1 run is the noise of a single '
        'run.',
        '']
    if result is None:
        return text + ['No results: `python benchmarks/channel_criteria.py` '
                       'writes `benchmarks/results/channel_criteria.json`.']
    dense = result['dense']
    load = ', '.join(f'{v:g}' for v in result['load_average_start'])
    return text + [
        f"This run: {result['train_examples']:,} training images, batch "
        f"{result['batch_size']}, seed {result['seed']}, widths "
        f"{'/'.join(map(str, result['widths']))}, learning rate "
        f"{result['learning_rate']:g}; "
        f"{_count(result['epochs'] - result['prune_epochs'], 'dense epoch')}, "
        f"then "
        f"{result['prune_epochs']} ({result['phase_steps']:,} steps) of "
        f"pruning and fine-tuning; the example's schedule: "
        f"`{result['pruning_hparams']}`. The dense model had "
        f"{100 * dense['pretrained_test_accuracy']:.2f}% test accuracy when "
        f"the phase began. Load average (1, 5, 15 min) at the start: {load}. "
        f"The run took {result['seconds']:.0f} s.",
        '', channel_criteria_summary(result),
        '', channel_criteria_table(result)]


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
        '`make bench` runs the benchmarks below, each writing its '
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
        *_fashion(results),
        '',
        *_structured_speed(results['structured_speed.json']),
        '',
        *_sensitivity(results['sensitivity.json']),
        '',
        *_channel_criteria(results['channel_criteria.json'])]
    return '\n'.join(lines) + '\n'


def main():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from tf_prune.core import atomic  # pylint: disable=import-outside-toplevel
    atomic.write_bytes(DOC, render().encode())
    print(f'wrote {os.path.relpath(DOC)}')


if __name__ == '__main__':
    main()

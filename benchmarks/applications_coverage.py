r"""Which of Keras' own architectures channel pruning covers, and how well.

    python benchmarks/applications_coverage.py [--models=ResNet50,VGG16]

For every architecture in `keras.applications` (weights=None, 10 classes, no
classifier activation, the smallest input each accepts from 32x32 up, random
BatchNormalization statistics and biases so that they matter): one-shot L1
channel pruning at 0.5 with the public API (`tf_prune.prune(...,
one_shot=True)`), `tf_prune.shrink`, and the check that the shrunk model
computes what the masked one does (max |difference| over the masked model's
output range, at most 1e-5). Records the channel groups, the channels that
stay whole and why, and the parameters and FLOPs kept. Each architecture
runs in its own process (the largest hold 350 M parameters). Writes
`benchmarks/results/applications.json` (with --models, updates their
records in it) and the table `applications.md` beside it.
"""

import json
import os
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags  # noqa: E402

flags.DEFINE_list('models', [], 'Architectures to run (default: all)')
flags.DEFINE_string('json', 'benchmarks/results/applications.json',
                    'Where to write the results ("" for nowhere)')
flags.DEFINE_string('one', '', 'Internal: run one architecture, print JSON')
FLAGS = flags.FLAGS

TOLERANCE = 1e-5
SPEC = 'structure=channel,target_sparsity=0.5'
# The smallest input each family accepts with weights=None.
MIN_SIZE = {'InceptionV3': 75, 'InceptionResNetV2': 75, 'Xception': 71}


def _architectures():
    import keras  # noqa: PLC0415 (the parent process needs no TensorFlow)
    return sorted(name for name in dir(keras.applications)
                  if name[0].isupper())


def _run_one(name):
    """The record of one architecture."""
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    import tf_prune  # noqa: PLC0415
    from tf_prune.structured import cost  # noqa: PLC0415

    size = MIN_SIZE.get(name, 32)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(size, size, 3), classes=10,
        classifier_activation=None)
    rng = np.random.default_rng(3)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))
    found = tf_prune.structured.find_channel_groups(model)
    record = {
        'name': name, 'input': size, 'params': int(model.count_params()),
        'flops': int(cost.flops(model)), 'groups': len(found.groups),
        'unprunable': [
            {'group': found.groups[u.group].name, 'channels': len(u.channels),
             'size': found.groups[u.group].size, 'reason': u.reason}
            for u in found.unprunable]}
    try:
        pruned = tf_prune.prune(model, SPEC, one_shot=True)
    except ValueError as error:
        return dict(record, error=str(error))
    shrunk = tf_prune.shrink(pruned)
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype(
        np.float32)
    masked = keras.ops.convert_to_numpy(pruned(x, training=False))
    got = keras.ops.convert_to_numpy(shrunk(x, training=False))
    difference = float(np.abs(got - masked).max() / np.ptp(masked))
    return dict(record, shrunk_params=int(shrunk.count_params()),
                shrunk_flops=int(cost.flops(shrunk)), difference=difference,
                exact=difference <= TOLERANCE)


def main(argv):
    del argv
    if FLAGS.one:
        print(json.dumps(_run_one(FLAGS.one)))
        return 0
    names = FLAGS.models or _architectures()
    records = []
    for name in names:
        result = subprocess.run(
            [sys.executable, __file__, f'--one={name}'], capture_output=True,
            text=True, check=False)
        if result.returncode:
            tail = result.stderr.strip().splitlines()[-1:] or ['no output']
            records.append({'name': name, 'error': tail[0]})
        else:
            records.append(json.loads(result.stdout.strip().splitlines()[-1]))
        record = records[-1]
        if 'error' in record:
            print(f'{name}: ERROR {record["error"]}', flush=True)
        else:
            print(f'{name}: params {record["shrunk_params"] / record["params"]:.3f}x, '
                  f'FLOPs {record["shrunk_flops"] / record["flops"]:.3f}x, '
                  f'difference {record["difference"]:.1e}, '
                  f'{len(record["unprunable"])} unprunable entries', flush=True)
    if FLAGS.json and FLAGS.models and os.path.exists(FLAGS.json):
        # Rerunning some architectures updates their records only.
        with open(FLAGS.json) as file:
            kept = [r for r in json.load(file)['architectures']
                    if r['name'] not in set(names)]
        records = sorted(kept + records, key=lambda r: r['name'])
    if FLAGS.json:
        os.makedirs(os.path.dirname(FLAGS.json), exist_ok=True)
        atomic_write(FLAGS.json, json.dumps(
            {'spec': SPEC, 'tolerance': TOLERANCE, 'architectures': records},
            indent=1))
        atomic_write(os.path.splitext(FLAGS.json)[0] + '.md',
                     _table(records))
    return 1 if any('error' in r or not r['exact'] for r in records) else 0


def _reasons(record):
    """The distinct reasons channels stay whole, with their counts."""
    counts = {}
    for item in record['unprunable']:
        reason = item['reason']
        if reason.startswith('model output'):
            reason = 'model output'
        elif ' (' in reason:  # "read by <Class> '<path>' (<problem>)"
            reason = (reason.split("'")[0].strip() + ' ('
                      + reason.rsplit('(', 1)[1])
        counts[reason] = counts.get(reason, 0) + 1
    return '; '.join(f'{reason} x{count}' if count > 1 else reason
                     for reason, count in counts.items())


def _table(records):
    """The Markdown table of the records."""
    lines = [
        '<!-- Generated by benchmarks/applications_coverage.py. -->',
        '| architecture | input | parameters kept | FLOPs kept | max difference '
        '| groups | channels that stay whole |',
        '|---|---:|---:|---:|---:|---:|---|']
    for r in records:
        if 'error' in r:
            lines.append(f'| {r["name"]} | | | | error: {r["error"]} | | |')
            continue
        lines.append(
            f'| {r["name"]} | {r["input"]} | '
            f'{r["shrunk_params"] / r["params"]:.3f} | '
            f'{r["shrunk_flops"] / r["flops"]:.3f} | {r["difference"]:.1e} | '
            f'{r["groups"]} | {_reasons(r)} |')
    return '\n'.join(lines) + '\n'


def atomic_write(path, text):
    temporary = path + '.tmp'
    with open(temporary, 'w') as file:
        file.write(text)
    os.replace(temporary, path)


if __name__ == '__main__':
    app.run(main)

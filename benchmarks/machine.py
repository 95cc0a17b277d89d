"""The machine a benchmark runs on, recorded in its JSON."""

import os


def _cpu_model():
    try:
        with open('/proc/cpuinfo') as file:
            for line in file:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'unknown'


def describe():
    """{cpu_count, cpu_model, accelerators, tensorflow} of this process."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return {'cpu_count': os.cpu_count(), 'cpu_model': _cpu_model(),
            'accelerators': sorted(
                device.name for device in tf.config.list_physical_devices()
                if device.device_type != 'CPU'),
            'tensorflow': tf.__version__}

"""Event files read back through TensorBoard's own plugins, as its UI reads them."""

import json

from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.custom_scalar import custom_scalars_plugin
from tensorboard.plugins.scalar import scalars_plugin


class LogDir:
    """A `--logdir` loaded as TensorBoard loads it.

    Args:
      log_dir: the directory TensorBoard would be started on.
    """

    def __init__(self, log_dir):
        multiplexer = plugin_event_multiplexer.EventMultiplexer()
        multiplexer.AddRunsFromDirectory(str(log_dir))
        multiplexer.Reload()
        self.runs = sorted(multiplexer.Runs())
        tb_context = base_plugin.TBContext(
            logdir=str(log_dir), multiplexer=multiplexer,
            data_provider=data_provider.MultiplexerDataProvider(
                multiplexer, str(log_dir)),
            plugin_name_to_instance={})
        plugins = tb_context.plugin_name_to_instance
        plugins['scalars'] = scalars_plugin.ScalarsPlugin(tb_context)
        self._custom = custom_scalars_plugin.CustomScalarsPlugin(tb_context)
        plugins['custom_scalars'] = self._custom
        self._request = context.RequestContext()

    def layout(self):
        """The custom-scalars layout, merged over runs, as the UI gets it."""
        return json.loads(self._custom.layout_impl(self._request, ''))

    def chart_series(self, run, tag_regex):
        """{tag: [(step, value)]} of the scalars a chart's regex selects."""
        body = self._custom.scalars_impl(self._request, run, tag_regex, '')
        return {tag: [(step, value) for _, step, value in events]
                for tag, events in body['tag_to_events'].items()}

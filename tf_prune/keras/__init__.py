"""Pruning Keras 3 models: the wrapper, `prune`, the `Pruning` controller,
callbacks, summaries, stripping and training directories.

Built on `tf_prune.core`; `tf_prune.export` builds on it.
"""

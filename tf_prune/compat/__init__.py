"""Drop-in replacements for APIs tf_prune's users ran before.

`tf_prune.compat.v1` is TF 1.15's `tf.contrib.model_pruning` on TF 2's
graph mode.
"""

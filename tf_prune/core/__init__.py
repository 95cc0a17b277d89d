"""The pruning engine, TensorFlow only: hparams, schedule, mask update, files.

Nothing here knows Keras; `tf_prune.keras` and everything above build on it.
"""

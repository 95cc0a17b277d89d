"""`tfmot.sparsity`: its `keras` API (`from tf_prune.tfmot.sparsity import
keras as sparsity` stands for tfmot's `... .sparsity import keras`)."""

from tf_prune.tfmot.sparsity import keras

__all__ = ['keras']

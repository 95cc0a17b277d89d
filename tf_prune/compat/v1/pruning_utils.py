"""contrib's pruning_utils: the mask and threshold variables, block helpers.

The names and signatures are those of
`tensorflow.contrib.model_pruning.python.pruning_utils` (TF 1.15); contrib's
own tests call `factorized_pool`, `expand_tensor` and `kronecker_product`.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def weight_mask_variable(var, scope):
    """The `mask` variable of a weight: its shape and dtype, all ones.

    Args:
      var: the weight variable (or tensor) to mask.
      scope: the variable scope (or its name) to create the mask in.

    Returns:
      A non-trainable variable named `<scope>/mask`.
    """
    with v1.variable_scope(scope):
        return v1.get_variable(
            'mask', var.get_shape(), initializer=v1.ones_initializer(),
            trainable=False, dtype=var.dtype)


def weight_threshold_variable(var, scope):
    """The scalar `threshold` variable of a weight, zero at first.

    Args:
      var: the weight variable (or tensor) to mask.
      scope: the variable scope (or its name) to create the threshold in.

    Returns:
      A non-trainable scalar variable named `<scope>/threshold`.
    """
    with v1.variable_scope(scope):
        return v1.get_variable(
            'threshold', [], initializer=v1.zeros_initializer(),
            trainable=False, dtype=var.dtype)


def kronecker_product(mat1, mat2):
    """The Kronecker product of two matrices of static shapes.

    Args:
      mat1: an m x n matrix.
      mat2: a p x q matrix.

    Returns:
      The mp x nq matrix whose (i, j) block is `mat1[i, j] * mat2`.
    """
    m1, n1 = mat1.get_shape().as_list()
    m2, n2 = mat2.get_shape().as_list()
    # Broadcasting [m1, 1, n1, 1] against [1, m2, 1, n2] lays the blocks out
    # row-major, as the product needs.
    blocks = (tf.reshape(mat1, [m1, 1, n1, 1])
              * tf.reshape(mat2, [1, m2, 1, n2]))
    return tf.reshape(blocks, [m1 * m2, n1 * n2])


def expand_tensor(tensor, block_dims):
    """Repeats each element of a matrix over a block of `block_dims`.

    The same as the Kronecker product with a matrix of ones of that size.

    Args:
      tensor: a rank-2 tensor.
      block_dims: [block_height, block_width].

    Returns:
      The expanded tensor.

    Raises:
      ValueError: the tensor is not rank 2 or block_dims has not 2 elements.
    """
    if tensor.get_shape().ndims != 2:
        raise ValueError('Input tensor must be rank 2')
    if len(block_dims) != 2:
        raise ValueError('block_dims must have 2 elements')
    block_height, block_width = block_dims
    expanded = tensor
    if block_height > 1:
        expanded = tf.repeat(expanded, block_height, axis=0)
    if block_width > 1:
        expanded = tf.repeat(expanded, block_width, axis=1)
    return expanded


def factorized_pool(input_tensor, window_shape, pooling_type, strides,
                    padding, name=None):
    """m x n pooling of a matrix as a 1 x m pooling then a 1 x n pooling.

    Args:
      input_tensor: a rank-2 tensor.
      window_shape: [m, n].
      pooling_type: 'AVG' or 'MAX'.
      strides: [stride along rows, stride along columns].
      padding: 'SAME' or 'VALID'.
      name: a name scope for the ops.

    Returns:
      The pooled rank-2 tensor.

    Raises:
      ValueError: the input is not rank 2.
    """
    if input_tensor.get_shape().ndims != 2:
        raise ValueError('factorized_pool() accepts tensors of rank 2 only')
    height, width = input_tensor.get_shape().as_list()
    with tf.name_scope(name or 'factorized_pool'):
        # As NHWC [1, 1, rows, cols], a 1 x m window pools along the rows.
        aligned = tf.reshape(input_tensor, [1, 1, height, width])
        by_rows = tf.nn.pool(aligned, window_shape=[1, window_shape[0]],
                             pooling_type=pooling_type,
                             strides=[1, strides[0]], padding=padding)
        swapped = tf.transpose(by_rows, perm=[0, 1, 3, 2])
        by_columns = tf.nn.pool(swapped, window_shape=[1, window_shape[1]],
                                pooling_type=pooling_type,
                                strides=[1, strides[1]], padding=padding)
        return tf.squeeze(tf.transpose(by_columns, perm=[0, 1, 3, 2]),
                          axis=[0, 1])


def determine_partitioned_axis(partitioned_variable):
    """The one axis along which a partitioned variable was split.

    Args:
      partitioned_variable: a `PartitionedVariable`.

    Returns:
      The axis index.

    Raises:
      ValueError: a partition is smaller than the whole along more or fewer
        than one axis.
    """
    full_shape = partitioned_variable.get_shape().as_list()
    axis = 0
    for partition in partitioned_variable:
        smaller = np.less(partition.get_shape().as_list(), full_shape)
        if np.count_nonzero(smaller) != 1:
            raise ValueError('Number of partitioned axes %s not equal to 1'
                             % np.count_nonzero(smaller))
        axis = int(np.flatnonzero(smaller)[0])
    return axis


def variable_assign(var, new_value):
    """`assign` named `<var>_assign`, as contrib named its mask updates."""
    return v1.assign(var, new_value, name=var.op.name + '_assign')


def partitioned_variable_assign(partitioned_var, new_value):
    """Assigns a whole value to the slices of a partitioned variable.

    Args:
      partitioned_var: a `PartitionedVariable`.
      new_value: a tensor of its full shape.

    Returns:
      An op grouping the assignment of every slice.
    """
    partitions = list(partitioned_var)
    axis = (0 if len(partitions) == 1
            else determine_partitioned_axis(partitioned_var))
    sizes = [partition.get_shape().as_list()[axis] for partition in partitions]
    pieces = tf.split(new_value, sizes, axis=axis)
    assignments = [variable_assign(partition, piece)
                   for partition, piece in zip(partitions, pieces)]
    return tf.group(*assignments,
                    name=partitioned_var.name + '_group_assign')

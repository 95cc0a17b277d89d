"""The mask update of one weight: contrib's threshold and mask, found in O(n).

contrib r1.15 sorted the whole of |w| with `top_k` to read its k-th largest
value. Non-negative float32 values order like their int32 bit patterns, so the
same value is found by a radix select: a histogram of the high 16 bits finds
the bucket holding the k-th value, a histogram of the low 16 bits of that
bucket's values finds the value. Both histograms are `DenseBincount` calls
with a fixed number of bins, so the select also compiles under XLA.

A weight with a NaN or an infinity cannot be ranked: the update raises
InvalidArgumentError naming the weight. XLA drops TensorFlow's runtime
checks, so under `jit_compile` the caller checks first (as `Pruning` does).
"""

import absl.logging as logging
import numpy as np
import tensorflow as tf

from tf_prune.core import hparams as hparams_lib

_LOW_BITS = 16
_BUCKETS = 1 << _LOW_BITS
# |w| has no sign bit: its high 16 bits take 2**15 values.
_ABS_BUCKETS = 1 << 15
# Below this many elements plain TF ops are as fast as fused XLA kernels, and
# skipping XLA avoids one compilation per weight shape.
_FUSE_MIN_SIZE = 1 << 16
_SELECT_ROW = 256
# Up to this many elements, a sort finds the k-th value.
_SORT_MAX_SIZE = 4096
# (weight name, shape, block dims) already warned of as clamped.
_warned_blocks = set()


def _bincount(values, size):
    """Counts of `values` in [0, size); values >= size are skipped."""
    return tf.raw_ops.DenseBincount(
        input=values, size=size, weights=tf.zeros([0], tf.int32),
        binary_output=False)


def _select_small(hist, k):
    """`_select_bin` for a histogram of at most a few hundred bins."""
    at_or_above = tf.cumsum(hist, reverse=True)
    index = tf.reduce_sum(tf.cast(at_or_above >= k, tf.int32)) - 1
    return index, k - (at_or_above[index] - hist[index])


def _select_bin(hist, k):
    """Finds the bin holding the k-th largest element of a histogram.

    Args:
      hist: int32 counts, bins in ascending order of value; the length is a
        multiple of 256.
      k: int32 rank from the top, 1 <= k <= sum(hist).

    Returns:
      (bin, rank of the element within that bin, counted from its top).
    """
    # Two levels of 256 keep each level's work small.
    rows = tf.reshape(hist, [-1, _SELECT_ROW])
    row, rank = _select_small(tf.reduce_sum(rows, axis=1), k)
    column, rank = _select_small(rows[row], rank)
    return row * _SELECT_ROW + column, rank


def _abs(weights, dtype=tf.float32):
    return tf.abs(tf.cast(weights, dtype))


def _abs_bits(weights):
    """The int32 bit patterns of |w| as float32, flattened."""
    return tf.bitcast(tf.reshape(_abs(weights), [-1]), tf.int32)


def _high_bits(weights):
    return tf.bitwise.right_shift(_abs_bits(weights), _LOW_BITS)


def _low_bits_of_bucket(weights, bucket):
    """Low 16 bits of the |w| in `bucket`; every other element maps to 65536."""
    bits = _abs_bits(weights)
    in_bucket = tf.equal(tf.bitwise.right_shift(bits, _LOW_BITS), bucket)
    return tf.where(in_bucket, tf.bitwise.bitwise_and(bits, _BUCKETS - 1),
                    _BUCKETS)


def _mask_at_least(weights, threshold):
    return tf.cast(_abs(weights, threshold.dtype) >= threshold, weights.dtype)


# XLA fuses each of these element-wise passes into one loop over the weight,
# twice as fast as TF's op-by-op kernels on large weights.
_FUSED = {
    fn: tf.function(fn, jit_compile=True, autograph=False)
    for fn in (_high_bits, _low_bits_of_bucket, _mask_at_least)
}


def _kernel(fn, weights):
    """`fn`, XLA-fused when `weights` is large."""
    n = weights.shape.num_elements()
    if n is not None and n >= _FUSE_MIN_SIZE:
        return _FUSED[fn]
    return fn


def _two_pass_select(weights, k):
    """Bit pattern of the k-th largest |w| (float32) by a two-pass radix select."""
    high_bits = _kernel(_high_bits, weights)(weights)
    bucket, rank = _select_bin(_bincount(high_bits, _ABS_BUCKETS), k)
    low_bits = _kernel(_low_bits_of_bucket, weights)(weights, bucket)
    low, _ = _select_bin(_bincount(low_bits, _BUCKETS), rank)
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(bucket, _LOW_BITS), low)


def _kth_largest_abs(weights, k):
    """The k-th largest |w|, exactly (float32, or float64 for float64 w).

    Args:
      weights: a float tensor.
      k: int32 scalar, 1 <= k <= size.

    Returns:
      A scalar: float64 for float64 weights, else float32.
    """
    size = weights.shape.num_elements()
    if weights.dtype == tf.float64 or (size is not None
                                       and size <= _SORT_MAX_SIZE):
        # Radix select works on float32 bit patterns; float64 weights are
        # rare enough, and small ones (a vector of channel scores) cheap
        # enough, for a sort, which traces and runs faster there.
        dtype = tf.float64 if weights.dtype == tf.float64 else tf.float32
        flat = tf.reshape(_abs(weights, dtype), [-1])
        if size == 0:
            return tf.zeros([], dtype)  # there is no k-th value to read
        return tf.gather(tf.math.top_k(flat, k=tf.size(flat)).values, k - 1)
    return tf.bitcast(_two_pass_select(weights, k), tf.float32)


def _histogram_threshold(scores, sparsity, nbins):
    """TF 1.13's threshold: (count(cdf < s) / nbins) * max|w|.

    The binning is `histogram_fixed_width`'s (float64 steps), and the float32
    operations are in the order contrib's optimized graph ran them:
    count * (max * (1 / nbins)).
    """
    max_value = tf.reduce_max(scores)
    # An all-zero weight has no bin width (0 / 0 would be a NaN bin); any
    # width puts it all in bin 0, and its threshold is 0 whatever the bins.
    step = tf.where(max_value > 0, tf.cast(max_value, tf.float64) / nbins,
                    tf.constant(1.0, tf.float64))
    bins = tf.cast(tf.minimum(tf.cast(scores, tf.float64) / step, nbins - 1),
                   tf.int32)
    cdf = tf.cast(tf.cumsum(_bincount(tf.reshape(bins, [-1]), nbins)),
                  tf.float32)
    normalized_cdf = cdf / cdf[-1]
    count = tf.reduce_sum(tf.cast(normalized_cdf < sparsity, tf.float32))
    reciprocal = np.float32(1.0) / np.float32(nbins)
    threshold = count * (max_value * reciprocal)
    # An empty weight's maximum is -inf.
    return tf.where(max_value > 0, threshold, tf.zeros_like(threshold))


def _label(name):
    return name or 'passed to update_mask'


def _resolve_block_dims(block_dims, shape, name):
    """contrib's block dims for a weight, -1 meaning that whole dimension.

    A block larger than the weight is clamped to it: pooled with SAME
    padding, the weight is one block along that dimension either way, and
    the clamp spares pooling windows and mask repeats of the block's size.
    The first clamp of each weight logs a warning, since a weight of one
    block keeps it whole (k is at least 1).

    Args:
      block_dims: (height, width), each positive or -1.
      shape: the weight's squeezed [rows, cols].
      name: the weight's name, for the warning.

    Returns:
      [height, width], each at most the weight's.
    """
    wanted = [dim if block == -1 else block
              for block, dim in zip(block_dims, shape)]
    block = [min(b, dim) for b, dim in zip(wanted, shape)]
    key = (name, tuple(shape), tuple(block_dims))
    if block != wanted and key not in _warned_blocks:
        _warned_blocks.add(key)
        blocks = -(-shape[0] // block[0]) * -(-shape[1] // block[1])
        logging.warning(
            'Block dims %dx%d exceed weight %s of (squeezed) shape %dx%d; '
            'clamped to %dx%d, %d block(s), of which a mask update keeps at '
            'least one: use blocks smaller than the weight to prune it',
            *wanted, _label(name), *shape, *block, blocks)
    return block


def _pool_rows(matrix, size, pool):
    """Pools a [rows, cols] matrix along its rows, windows of `size`, SAME."""
    # As NHWC [1, 1, rows, cols], the pooled spatial axis is the rows.
    pooled = pool(matrix[tf.newaxis, tf.newaxis], ksize=[1, size],
                  strides=[1, size], padding='SAME')
    return pooled[0, 0]


def _pool(matrix, block, pooling_function):
    """contrib's factorized block pooling: along rows, then along columns."""
    pool = tf.nn.avg_pool2d if pooling_function == 'AVG' else tf.nn.max_pool2d
    by_rows = _pool_rows(matrix, block[0], pool)
    return tf.transpose(_pool_rows(tf.transpose(by_rows), block[1], pool))


def _checked_sparsity(sparsity, name):
    """The sparsity as a float32 tensor, checked to be in [0, 1].

    A value the host knows (a number, a NumPy value, an eager tensor or
    variable) is checked now; a graph tensor gets an assertion that runs
    with the update (InvalidArgumentError when it fails).

    Args:
      sparsity: `update_mask`'s sparsity.
      name: the weight's name, for the message.

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: the value is known and is NaN, infinite or outside [0, 1].
    """
    message = (f'update_mask sparsity must be in [0, 1] (the fraction of '
               f'zeros) for weight {_label(name)}, got')
    if tf.executing_eagerly() or not tf.is_tensor(sparsity):
        value = float(np.asarray(sparsity))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'{message} {value}')
        return tf.cast(sparsity, tf.float32)
    sparsity = tf.cast(sparsity, tf.float32)
    in_range = tf.logical_and(sparsity >= 0.0, sparsity <= 1.0)
    # Wired as a dependency: TF1 graphs run only what the result needs.
    with tf.control_dependencies([tf.debugging.Assert(in_range,
                                                      [message, sparsity])]):
        return tf.identity(sparsity)


def check_finite(weights, name=None):
    """The weights, with a check that raises on a NaN or an infinity.

    Args:
      weights: a float tensor.
      name: the weight's name, for the message.

    Returns:
      `weights`, passed through the check (a no-op under XLA).

    Raises:
      tf.errors.InvalidArgumentError: when run, `weights` hold a NaN or an
        infinity; the message names the weight.
    """
    return tf.debugging.check_numerics(
        weights,
        f'weight {_label(name)} has NaN or Inf values; the mask update cannot '
        f'rank them (training diverged? lower the learning rate or clip '
        f'gradients)')


def _check_arguments(weights, threshold_decay, block_dims,
                     block_pooling_function, method, nbins):
    if not weights.dtype.is_floating:
        raise TypeError(
            f'update_mask needs float weights (float16, bfloat16, float32 or '
            f'float64); got dtype {weights.dtype.name}')
    hparams_lib.check_unit_interval('threshold_decay', threshold_decay)
    if len(block_dims) != 2:
        raise ValueError(
            f'block_dims must be (height, width), got {tuple(block_dims)}')
    for d in block_dims:
        hparams_lib.check_block_dim('block_dims', d)
    hparams_lib.check_pooling_function(block_pooling_function)
    hparams_lib.check_choice('method', method, hparams_lib.THRESHOLD_METHODS)
    hparams_lib.check_nbins(nbins)


def _check_n_of_m_arguments(n_of_m, threshold_decay, block_dims, method):
    """Raises for an `n_of_m` update_mask cannot honour as it is given."""
    if not isinstance(n_of_m, (tuple, list)) or len(n_of_m) != 2:
        raise ValueError(
            f'update_mask n_of_m must be a pair (n, m), as (2, 4) for 2 kept '
            f'of every 4 weights; got {n_of_m!r}')
    check_n_of_m(*n_of_m, what='update_mask n_of_m')
    conflicts = []
    if threshold_decay:
        conflicts.append(f'threshold_decay={threshold_decay}')
    if list(block_dims) != [1, 1]:
        conflicts.append(f'block_dims={tuple(block_dims)}')
    if method != 'exact':
        conflicts.append(f'method={method!r}')
    if conflicts:
        raise ValueError(
            f'update_mask n_of_m={tuple(n_of_m)} keeps the n largest |w| of '
            f'every m, with no threshold, and cannot take '
            f'{", ".join(conflicts)}; drop them or n_of_m')


def update_mask(weights, sparsity, threshold=0.0, *, threshold_decay=0.0,
                block_dims=(1, 1), block_pooling_function='AVG',
                method='exact', nbins=256, name=None, n_of_m=None):
    """contrib's mask update of one weight.

    With k = round_half_to_even(float32(n) * (1 - sparsity)) (clamped to
    [1, n]; contrib crashed at k = 0), the new threshold is
    `(1 - threshold_decay) * kth_largest(|w|) + threshold_decay * threshold`
    and the mask is `|w| >= new threshold` (ties with the k-th value kept).
    When `block_dims` is not (1, 1) and the weight squeezes to a matrix, the
    same is done on |w| pooled over blocks and the block mask is expanded;
    a block larger than the weight is clamped to it, with a warning.

    With `n_of_m=(n, m)` the mask is `n_of_m_mask(weights, n, m)` instead:
    the n largest |w| of every m consecutive weights along the
    input-channel axis. No threshold is computed (the given one comes back,
    cast), `sparsity` is not read, and `threshold_decay`, `block_dims` and
    `method='histogram'`, which only shape a threshold's mask, are refused.

    Args:
      weights: a float tensor of any shape, all finite; its static shape
        must be known for block pruning.
      sparsity: the target fraction of zeros in [0, 1], a float or float32
        scalar (1 keeps the single largest entry).
      threshold: the previous threshold, smoothed into the new one.
      threshold_decay: contrib's exponential smoothing, in [0, 1).
      block_dims: (height, width) of a block; -1 is the whole dimension.
      block_pooling_function: 'AVG' or 'MAX', pooling |w| over a block.
      method: 'exact' (the k-th largest value, contrib r1.15) or 'histogram'
        (TF 1.13's histogram estimate, masking |w| > threshold).
      nbins: histogram bins for method='histogram'.
      name: the weight's name, for error messages and warnings.
      n_of_m: None, or (n, m) with 1 <= n < m: N:M masks, for weights of
        rank 2 or more with a static shape.

    Returns:
      (new_threshold, new_mask): a scalar (float64 for float64 weights, else
      float32) and a 0/1 tensor of the weight's shape and dtype.

    Raises:
      TypeError: the weights are not floating point.
      ValueError: an argument is out of range, or the sparsity is a known
        value outside [0, 1] or NaN; `n_of_m` with arguments it refuses, or
        with a weight of rank below 2.
      tf.errors.InvalidArgumentError: when the update runs, the weights hold
        a NaN or an infinity, or a graph tensor sparsity is outside [0, 1]
        (TensorFlow's runtime checks, which XLA leaves out).
    """
    weights = tf.convert_to_tensor(weights)
    _check_arguments(weights, threshold_decay, block_dims,
                     block_pooling_function, method, nbins)
    threshold_dtype = tf.float64 if weights.dtype == tf.float64 else tf.float32
    if n_of_m is not None:
        _check_n_of_m_arguments(n_of_m, threshold_decay, block_dims, method)
        return (tf.cast(threshold, threshold_dtype),
                n_of_m_mask(weights, *n_of_m, name=name))
    weights = check_finite(weights, name)
    sparsity = _checked_sparsity(sparsity, name)
    threshold = tf.cast(threshold, threshold_dtype)
    blocked = list(block_dims) != [1, 1]
    if blocked and not weights.shape.is_fully_defined():
        raise ValueError(
            f'Block pruning needs a static weight shape; got {weights.shape}')
    squeezed_shape = [d for d in weights.shape if d != 1]
    pooled = blocked and len(squeezed_shape) == 2

    if pooled:
        block = _resolve_block_dims(block_dims, squeezed_shape, name)
        abs_matrix = _abs(tf.reshape(weights, squeezed_shape), threshold_dtype)
        scores = _pool(abs_matrix, block, block_pooling_function)
    else:
        scores = weights

    n = tf.size(scores)
    if method == 'exact':
        k = tf.cast(tf.round(tf.cast(n, tf.float32) * (1.0 - sparsity)),
                    tf.int32)
        k = tf.clip_by_value(k, 1, tf.maximum(n, 1))
        current = tf.cast(_kth_largest_abs(scores, k), threshold_dtype)
        current = tf.where(n > 0, current, tf.zeros_like(current))
    else:
        current = tf.cast(
            _histogram_threshold(_abs(scores), sparsity, nbins),
            threshold_dtype)

    # contrib multiplied by Python-computed constants; the products are
    # rounded to float32 before the sum, as in its add_n.
    keep = np.dtype(threshold_dtype.as_numpy_dtype).type(1.0 - threshold_decay)
    decay = np.dtype(threshold_dtype.as_numpy_dtype).type(threshold_decay)
    new_threshold = current * keep + threshold * decay

    # contrib kept ties for the exact threshold; TF 1.13's histogram did not.
    kept = tf.greater_equal if method == 'exact' else tf.greater
    if pooled:
        block_mask = kept(scores, new_threshold)  # scores are pooled |w|
        expanded = tf.repeat(tf.repeat(block_mask, block[0], axis=0),
                             block[1], axis=1)
        mask = tf.reshape(expanded[:squeezed_shape[0], :squeezed_shape[1]],
                          weights.shape)
        return new_threshold, tf.cast(mask, weights.dtype)
    if method == 'exact':
        return new_threshold, _kernel(_mask_at_least, weights)(
            weights, new_threshold)
    return new_threshold, tf.cast(
        kept(_abs(weights, threshold_dtype), new_threshold), weights.dtype)


def check_n_of_m(n, m, what='N:M sparsity'):
    """Raises unless 1 <= n < m: N kept of every M makes a pattern."""
    if not (isinstance(n, (int, np.integer)) and isinstance(m, (int, np.integer))
            and 1 <= n < m):
        raise ValueError(
            f'{what} keeps N of every M weights and needs integers '
            f'1 <= N < M (2:4 keeps 2 of 4), got {n}:{m}')


def n_of_m_mask(weights, n, m, name=None):
    """The N:M mask of a weight: the n largest |w| of every m consecutive
    weights along the input-channel axis, exactly n kept per full group.

    The input-channel axis is the second to last one (Dense `[in, out]`,
    ConvND `[..., in, out]`), the axis along which sparse kernels (TFLite's
    2:4 check, tfmot's `sparsity_m_by_n`) count groups: every run of m
    positions along it, for each position of the other axes. A last group
    of fewer than m weights keeps n of them, or all when it has n or fewer.
    Ties keep the lower position, as `top_k` orders them (tfmot's rule).

    Args:
      weights: a float tensor of rank 2 or more, static shape, all finite.
      n: weights kept per group, 1 <= n < m.
      m: group length along the input-channel axis.
      name: the weight's name, for error messages.

    Returns:
      A 0/1 tensor of the weight's shape and dtype.

    Raises:
      ValueError: bad n or m, or a weight of rank below 2 (no input-channel
        axis) or of unknown shape.
    """
    check_n_of_m(n, m)
    weights = tf.convert_to_tensor(weights)
    shape = weights.shape
    if shape.rank is None or shape.rank < 2 or not shape.is_fully_defined():
        raise ValueError(
            f'N:M sparsity groups weights along the input-channel axis (the '
            f'second to last), which weight {_label(name)} of shape {shape} '
            f'lacks; prune only weights of rank 2 or more, of a static '
            f'shape, with it')
    weights = check_finite(weights, name)
    if shape.num_elements() == 0:
        return tf.ones_like(weights)  # no group to mask
    # Rows of the input-channel axis, each split in groups of m (zero padded;
    # a row shorter than m is one partial group, unpadded: m can be huge).
    length = min(m, shape[-2])
    moved = tf.experimental.numpy.moveaxis(weights, -2, -1)
    dtype = tf.float64 if weights.dtype == tf.float64 else tf.float32
    rows = tf.reshape(_abs(moved, dtype), [-1, shape[-2]])
    pad = -shape[-2] % length
    groups = tf.reshape(tf.pad(rows, [[0, 0], [0, pad]]), [-1, length])
    kept = tf.math.top_k(groups, k=min(n, length), sorted=False).indices
    group_mask = tf.reduce_max(tf.one_hot(kept, length, dtype=weights.dtype),
                               axis=1)
    row_mask = tf.reshape(group_mask, [rows.shape[0], -1])[:, :shape[-2]]
    return tf.experimental.numpy.moveaxis(
        tf.reshape(row_mask, moved.shape), -1, -2)

"""contrib's LSTM cells with a masked kernel, for TF1 graphs.

The port of `tensorflow.contrib.model_pruning.python.layers.rnn_cells`
(TF 1.15). Each cell adds one `mask` and one `threshold` for its kernel (the
`[input depth + output depth, 4 * num_units]` matrix of the four gates) and
computes with `mask * kernel`, named `.../weights/masked_weight`, recorded in
`core_layers`' collections.

The parents are TF1's `BasicLSTMCell` and `LSTMCell`. TF 2.21 still ships
them, in `tensorflow.python.ops.rnn_cell_impl` (the module `static_rnn`,
`dynamic_rnn` and `MultiRNNCell` are built on), but with Keras 3 installed
its public alias `tf.compat.v1.nn.rnn_cell` refuses to hand them out, so they
are imported from there. They need neither Keras 3 nor tf_keras.
"""

import tensorflow as tf
from tensorflow.python.ops import rnn_cell_impl

from tf_prune.compat.v1.layers import core_layers

v1 = tf.compat.v1


class _MaskedKernelMixin:
    """Gives an LSTM cell contrib's mask and threshold for its kernel."""

    def build(self, inputs_shape):
        """Creates the parent cell's variables, then the mask and threshold.

        Args:
          inputs_shape: the shape of the inputs, `[batch, input depth]`.
        """
        super().build(inputs_shape)
        self._mask_kernel()

    def _mask_kernel(self):
        """Creates `mask` and `threshold` and the masked kernel.

        The mask takes the kernel's own shape, which includes the projection
        size when there is one: contrib gave it `[input depth + num_units,
        4 * num_units]`, so its MaskedLSTMCell failed to build whenever
        `num_proj != num_units`.
        """
        # The parent's build marked the cell built, and a built TF1 layer
        # only reuses variables: unmark it while adding the two.
        self.built = False
        self._mask = self.add_weight(
            'mask', shape=self._kernel.get_shape(),
            initializer=v1.ones_initializer(), trainable=False,
            dtype=self.dtype)
        self._threshold = self.add_weight(
            'threshold', shape=[], initializer=v1.zeros_initializer(),
            trainable=False, dtype=self.dtype)
        self._masked_kernel = core_layers.masked_weight(
            self._mask, self._kernel, self._threshold)
        self.built = True


class MaskedBasicLSTMCell(_MaskedKernelMixin, rnn_cell_impl.BasicLSTMCell):
    """TF1's basic LSTM cell computing with a masked kernel.

    No cell clipping, projection or peephole connections; `forget_bias`
    (default 1) is added to the forget gate's biases to forget less at the
    start of training (http://arxiv.org/abs/1409.2329).

    Args:
      num_units: the number of units of the cell.
      forget_bias: the bias added to the forget gate; 0.0 when restoring
        CudnnLSTM-trained checkpoints.
      state_is_tuple: if True, states are `LSTMStateTuple(c, h)`; if False,
        `c` and `h` concatenated along the columns.
      activation: the activation of the inner states (default tanh).
      reuse: whether to reuse the variables of an existing scope; if not True
        and the scope already has them, creating them raises an error.
      name: the cell's name; cells of the same name share variables, which
        needs `reuse=True`.
    """

    def __init__(self,
                 num_units,
                 forget_bias=1.0,
                 state_is_tuple=True,
                 activation=None,
                 reuse=None,
                 name=None):
        super().__init__(
            num_units,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=activation,
            reuse=reuse,
            name=name)

    def call(self, inputs, state):
        """One LSTM step with the masked kernel.

        Args:
          inputs: a `[batch_size, input_size]` tensor.
          state: an `LSTMStateTuple` of two `[batch_size, num_units]` tensors
            if `state_is_tuple`, else a `[batch_size, 2 * num_units]` tensor.

        Returns:
          The new hidden state `h` and the new state, in the form of `state`.
        """
        if self._state_is_tuple:
            c, h = state
        else:
            c, h = tf.split(state, num_or_size_splits=2, axis=1)
        gate_inputs = tf.nn.bias_add(
            tf.matmul(tf.concat([inputs, h], 1), self._masked_kernel),
            self._bias)
        # i = input gate, j = new input, f = forget gate, o = output gate.
        i, j, f, o = tf.split(gate_inputs, num_or_size_splits=4, axis=1)
        forget_bias = tf.constant(self._forget_bias, dtype=f.dtype)
        new_c = (c * tf.sigmoid(f + forget_bias)
                 + tf.sigmoid(i) * self._activation(j))
        new_h = self._activation(new_c) * tf.sigmoid(o)
        if self._state_is_tuple:
            return new_h, rnn_cell_impl.LSTMStateTuple(new_c, new_h)
        return new_h, tf.concat([new_c, new_h], 1)


class MaskedLSTMCell(_MaskedKernelMixin, rnn_cell_impl.LSTMCell):
    """TF1's LSTM cell (peepholes, clipping, projection) with a masked kernel.

    Only the gates' kernel is masked. The projection matrix is not, as in
    contrib, whose documentation says so: a cell keeps one mask, which is
    what contrib's tests and strip_pruning_vars count.

    Args:
      num_units: the number of units of the cell.
      use_peepholes: whether to use diagonal (peephole) connections.
      cell_clip: if given, the cell state is clipped to
        `[-cell_clip, cell_clip]` before the output activation.
      initializer: the initializer of the kernel and projection matrices.
      num_proj: if given, the output size of a projection of the output.
      proj_clip: if given with `num_proj`, the projected values are clipped
        to `[-proj_clip, proj_clip]`.
      num_unit_shards: deprecated; use a variable scope partitioner.
      num_proj_shards: deprecated; use a variable scope partitioner.
      forget_bias: the bias added to the forget gate (default 1); 0.0 when
        restoring CudnnLSTM-trained checkpoints.
      state_is_tuple: if True, states are `LSTMStateTuple(c, m)`; if False,
        `c` and `m` concatenated along the columns.
      activation: the activation of the inner states (default tanh).
      reuse: whether to reuse the variables of an existing scope; if not True
        and the scope already has them, creating them raises an error.
    """

    def __init__(self,
                 num_units,
                 use_peepholes=False,
                 cell_clip=None,
                 initializer=None,
                 num_proj=None,
                 proj_clip=None,
                 num_unit_shards=None,
                 num_proj_shards=None,
                 forget_bias=1.0,
                 state_is_tuple=True,
                 activation=None,
                 reuse=None):
        super().__init__(
            num_units,
            use_peepholes=use_peepholes,
            cell_clip=cell_clip,
            initializer=initializer,
            num_proj=num_proj,
            proj_clip=proj_clip,
            num_unit_shards=num_unit_shards,
            num_proj_shards=num_proj_shards,
            forget_bias=forget_bias,
            state_is_tuple=state_is_tuple,
            activation=activation,
            reuse=reuse)

    def call(self, inputs, state):
        """One LSTM step with the masked kernel.

        Args:
          inputs: a `[batch_size, input_size]` tensor.
          state: an `LSTMStateTuple(c, m)` if `state_is_tuple`, else `c` and
            `m` concatenated along the columns.

        Returns:
          The output `m` (`num_proj` wide if set, else `num_units`) and the new
          state, in the form of `state`.
        """
        num_proj = (self._num_units if self._num_proj is None
                    else self._num_proj)
        if self._state_is_tuple:
            c_prev, m_prev = state
        else:
            c_prev = tf.slice(state, [0, 0], [-1, self._num_units])
            m_prev = tf.slice(state, [0, self._num_units], [-1, num_proj])
        lstm_matrix = tf.nn.bias_add(
            tf.matmul(tf.concat([inputs, m_prev], 1), self._masked_kernel),
            self._bias)
        # i = input gate, j = new input, f = forget gate, o = output gate.
        i, j, f, o = tf.split(lstm_matrix, num_or_size_splits=4, axis=1)
        if self._use_peepholes:
            c = (tf.sigmoid(f + self._forget_bias + self._w_f_diag * c_prev)
                 * c_prev
                 + tf.sigmoid(i + self._w_i_diag * c_prev)
                 * self._activation(j))
        else:
            c = (tf.sigmoid(f + self._forget_bias) * c_prev
                 + tf.sigmoid(i) * self._activation(j))
        if self._cell_clip is not None:
            c = tf.clip_by_value(c, -self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            m = tf.sigmoid(o + self._w_o_diag * c) * self._activation(c)
        else:
            m = tf.sigmoid(o) * self._activation(c)
        if self._num_proj is not None:
            m = tf.matmul(m, self._proj_kernel)
            if self._proj_clip is not None:
                m = tf.clip_by_value(m, -self._proj_clip, self._proj_clip)
        if self._state_is_tuple:
            return m, rnn_cell_impl.LSTMStateTuple(c, m)
        return m, tf.concat([c, m], 1)


# TF's own cell stack and state tuple, from the same module: with Keras 3,
# `tf.compat.v1.nn.rnn_cell.MultiRNNCell` raises "not available with Keras
# 3", so a TF1 script stacking masked cells takes these from here.
MultiRNNCell = rnn_cell_impl.MultiRNNCell
LSTMStateTuple = rnn_cell_impl.LSTMStateTuple

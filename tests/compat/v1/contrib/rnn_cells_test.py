# Port of contrib's
# tensorflow/contrib/model_pruning/python/layers/rnn_cells_test.py
# (TensorFlow r1.15), run against tf_prune.compat.v1 on TF 2.
# Changed: the imports only (contrib's modules -> tf_prune.compat.v1; TF's
# private modules -> tests/compat/v1/contrib/tf1.py where it has the names
# used, else the TF 2.21 module of the same name that still has them:
# `rnn_cell`, whose public alias tf.compat.v1.nn.rnn_cell refuses to load
# with Keras 3, and `variables`, whose `Variable` is TF 2's tf.Variable as in
# contrib's tests; the __future__ imports dropped) and the layout (4-space
# indentation, long lines rewrapped). The test bodies and assertions are
# contrib's. Runs in a TF1 mode through tests/compat/v1/contrib_suite.py.
"""Tests for creating different number of masks in rnn_cells."""

from tensorflow.python.ops import rnn_cell as tf_rnn_cells
from tensorflow.python.ops import variables

from tests.compat.v1.contrib.tf1 import random_ops
from tests.compat.v1.contrib.tf1 import test
from tf_prune.compat.v1 import pruning
from tf_prune.compat.v1.layers import rnn_cells


class RnnCellsTest(test.TestCase):

    def setUp(self):
        super(RnnCellsTest, self).setUp()
        self.batch_size = 8
        self.dim = 10

    def testMaskedBasicLSTMCell(self):
        expected_num_masks = 1
        expected_num_rows = 2 * self.dim
        expected_num_cols = 4 * self.dim
        with self.cached_session():
            inputs = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            c = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            h = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            state = tf_rnn_cells.LSTMStateTuple(c, h)
            lstm_cell = rnn_cells.MaskedBasicLSTMCell(self.dim)
            lstm_cell(inputs, state)
            self.assertEqual(len(pruning.get_masks()), expected_num_masks)
            self.assertEqual(len(pruning.get_masked_weights()),
                             expected_num_masks)
            self.assertEqual(len(pruning.get_thresholds()), expected_num_masks)
            self.assertEqual(len(pruning.get_weights()), expected_num_masks)

            for mask in pruning.get_masks():
                self.assertEqual(mask.shape,
                                 (expected_num_rows, expected_num_cols))
            for weight in pruning.get_weights():
                self.assertEqual(weight.shape,
                                 (expected_num_rows, expected_num_cols))

    def testMaskedLSTMCell(self):
        expected_num_masks = 1
        expected_num_rows = 2 * self.dim
        expected_num_cols = 4 * self.dim
        with self.cached_session():
            inputs = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            c = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            h = variables.Variable(
                random_ops.random_normal([self.batch_size, self.dim]))
            state = tf_rnn_cells.LSTMStateTuple(c, h)
            lstm_cell = rnn_cells.MaskedLSTMCell(self.dim)
            lstm_cell(inputs, state)
            self.assertEqual(len(pruning.get_masks()), expected_num_masks)
            self.assertEqual(len(pruning.get_masked_weights()),
                             expected_num_masks)
            self.assertEqual(len(pruning.get_thresholds()), expected_num_masks)
            self.assertEqual(len(pruning.get_weights()), expected_num_masks)

            for mask in pruning.get_masks():
                self.assertEqual(mask.shape,
                                 (expected_num_rows, expected_num_cols))
            for weight in pruning.get_weights():
                self.assertEqual(weight.shape,
                                 (expected_num_rows, expected_num_cols))


if __name__ == '__main__':
    test.main()

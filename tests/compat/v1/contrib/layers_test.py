# Port of contrib's
# tensorflow/contrib/model_pruning/python/layers/layers_test.py (TensorFlow
# r1.15), run against tf_prune.compat.v1 on TF 2.
# Changed: the imports only (contrib's modules -> tf_prune.compat.v1; TF's
# private modules -> tests/compat/v1/contrib/tf1.py where it has the names
# used, else the TF 2.21 module of the same name that still has them; the
# __future__ imports dropped) and the layout (4-space indentation, long
# lines rewrapped). The test bodies and assertions are contrib's.
# Runs in a TF1 mode through tests/compat/v1/contrib_suite.py.
"""Tests for imagingvision.intelligence.tensorflow.model_pruning.layers."""

from tensorflow.python.framework import ops

from tests.compat.v1.contrib.tf1 import array_ops
from tests.compat.v1.contrib.tf1 import test
from tf_prune.compat.v1.layers import core_layers
from tf_prune.compat.v1.layers import layers


class MaskedConvolutionLayerTest(test.TestCase):

    def setUp(self):
        super(MaskedConvolutionLayerTest, self).setUp()
        self.height, self.width = 7, 9

    def testInvalidRank3(self):
        input_tensor = array_ops.ones((self.height, self.width, 3))
        with self.assertRaisesRegexp(ValueError, 'rank'):
            layers.masked_conv2d(input_tensor, 32, 3)

    def testInvalidRank5(self):
        input_tensor = array_ops.ones((8, 8, self.height, self.width, 3))
        with self.assertRaisesRegexp(ValueError, 'rank'):
            layers.masked_conv2d(input_tensor, 32, 3)

    def testSingleConvMaskAdded(self):
        kernel_size = 3
        input_depth, output_depth = 8, 32
        input_tensor = array_ops.ones(
            (8, self.height, self.width, input_depth))
        layers.masked_conv2d(input_tensor, output_depth, kernel_size)

        masks = ops.get_collection(core_layers.MASK_COLLECTION)
        self.assertEqual(len(masks), 1)
        self.assertListEqual(
            masks[0].get_shape().as_list(),
            [kernel_size, kernel_size, input_depth, output_depth])

        masked_weight = ops.get_collection(
            core_layers.MASKED_WEIGHT_COLLECTION)
        self.assertEqual(len(masked_weight), 1)
        self.assertListEqual(
            masked_weight[0].get_shape().as_list(),
            [kernel_size, kernel_size, input_depth, output_depth])

    def testMultipleConvMaskAdded(self):
        number_of_layers = 5

        kernel_size = 3
        base_depth = 4
        depth_step = 7

        input_tensor = array_ops.ones((8, self.height, self.width, base_depth))

        top_layer = input_tensor

        for ix in range(number_of_layers):
            top_layer = layers.masked_conv2d(
                top_layer, base_depth + (ix + 1) * depth_step, kernel_size)

        masks = ops.get_collection(core_layers.MASK_COLLECTION)
        self.assertEqual(len(masks), number_of_layers)
        for ix in range(number_of_layers):
            self.assertListEqual(masks[ix].get_shape().as_list(), [
                kernel_size, kernel_size, base_depth + ix * depth_step,
                base_depth + (ix + 1) * depth_step
            ])

        masked_weight = ops.get_collection(
            core_layers.MASKED_WEIGHT_COLLECTION)
        self.assertEqual(len(masked_weight), number_of_layers)
        for ix in range(number_of_layers):
            self.assertListEqual(masked_weight[ix].get_shape().as_list(), [
                kernel_size, kernel_size, base_depth + ix * depth_step,
                base_depth + (ix + 1) * depth_step
            ])


class MaskedFullyConnectedLayerTest(test.TestCase):

    def testSingleFCMaskAdded(self):
        input_depth, output_depth = 8, 32
        input_tensor = array_ops.ones((5, input_depth))
        layers.masked_fully_connected(input_tensor, output_depth)

        masks = ops.get_collection(core_layers.MASK_COLLECTION)
        self.assertEqual(len(masks), 1)
        self.assertListEqual(masks[0].get_shape().as_list(),
                             [input_depth, output_depth])

        masked_weight = ops.get_collection(
            core_layers.MASKED_WEIGHT_COLLECTION)
        self.assertEqual(len(masked_weight), 1)
        self.assertListEqual(masked_weight[0].get_shape().as_list(),
                             [input_depth, output_depth])

    def testMultipleConvMaskAdded(self):
        number_of_layers = 5

        base_depth = 4
        depth_step = 7

        input_tensor = array_ops.ones((8, base_depth))

        top_layer = input_tensor

        for ix in range(number_of_layers):
            top_layer = layers.masked_fully_connected(top_layer, base_depth +
                                                      (ix + 1) * depth_step)

        masks = ops.get_collection(core_layers.MASK_COLLECTION)
        self.assertEqual(len(masks), number_of_layers)
        for ix in range(number_of_layers):
            self.assertListEqual(masks[ix].get_shape().as_list(), [
                base_depth + ix * depth_step,
                base_depth + (ix + 1) * depth_step
            ])

        masked_weight = ops.get_collection(
            core_layers.MASKED_WEIGHT_COLLECTION)
        self.assertEqual(len(masked_weight), number_of_layers)
        for ix in range(number_of_layers):
            self.assertListEqual(masked_weight[ix].get_shape().as_list(), [
                base_depth + ix * depth_step,
                base_depth + (ix + 1) * depth_step
            ])


if __name__ == '__main__':
    test.main()

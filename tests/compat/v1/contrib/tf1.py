"""The TensorFlow modules contrib's tests imported, as public TF 2 APIs.

contrib's tests imported TF's private modules (`tensorflow.python.ops.
variables`, `...math_ops`, ...). The ports import these namespaces instead:
each holds, under contrib's names, the public `tf.compat.v1` function that
is what the private one was, so the test bodies stay as contrib wrote them.
"""

import types

import tensorflow as tf

v1 = tf.compat.v1

array_ops = types.SimpleNamespace(
    ones=tf.ones, reshape=tf.reshape, squeeze=v1.squeeze)
constant_op = types.SimpleNamespace(constant=tf.constant)
math_ops = types.SimpleNamespace(linspace=v1.linspace)
nn_ops = types.SimpleNamespace(pool=v1.nn.pool)
partitioned_variables = types.SimpleNamespace(
    variable_axis_size_partitioner=v1.variable_axis_size_partitioner)
random_ops = types.SimpleNamespace(random_normal=v1.random_normal)
state_ops = types.SimpleNamespace(assign=v1.assign, assign_add=v1.assign_add)
training_util = types.SimpleNamespace(
    get_or_create_global_step=v1.train.get_or_create_global_step)
variable_scope = types.SimpleNamespace(
    get_variable=v1.get_variable,
    get_variable_scope=v1.get_variable_scope,
    variable_scope=v1.variable_scope)
variables = types.SimpleNamespace(
    VariableV1=v1.Variable,
    global_variables_initializer=v1.global_variables_initializer)
# contrib's tests ran on `tensorflow.python.platform.test`.
test = tf.test

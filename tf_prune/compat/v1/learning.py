"""contrib's `learning.train`: tf-slim's training loop plus the mask update.

contrib wrapped `tf.contrib.slim.learning.train`, running `mask_update_op`
after every training step. slim is gone from TF 2; this module keeps the
same signature and loop, on TF 2's `tf.compat.v1.train.MonitoredSession`
(slim's `Supervisor` runs its services in threads, which do not see a graph
built in a `tf.Graph().as_default()` block):

    train_op = optimizer.minimize(loss, global_step=global_step)
    p = pruning.Pruning(pruning.get_pruning_hparams().parse(spec))
    learning.train(train_op, logdir, p.conditional_mask_update_op(),
                   number_of_steps=1000)
"""

import os
import time

import tensorflow as tf
from absl import logging

v1 = tf.compat.v1

_USE_DEFAULT = 0


def train_step(sess, train_op, global_step, train_step_kwargs):
    """slim's training step: runs `train_op`, logs, says whether to stop.

    Args:
      sess: the session.
      train_op: an op or tensor that applies the gradients and returns the
        loss.
      global_step: the global step tensor.
      train_step_kwargs: a dict; its optional bool tensors `should_stop` and
        `should_log` are read after the step.

    Returns:
      (total_loss, should_stop).
    """
    start = time.time()
    total_loss, step = sess.run([train_op, global_step])
    seconds = time.time() - start
    if 'should_log' in train_step_kwargs and sess.run(
            train_step_kwargs['should_log']):
        logging.info('global step %d: loss = %.4f (%.3f sec/step)', step,
                     total_loss, seconds)
    should_stop = ('should_stop' in train_step_kwargs
                   and bool(sess.run(train_step_kwargs['should_stop'])))
    return total_loss, should_stop


def _default_step_kwargs(global_step, number_of_steps, log_every_n_steps):
    with tf.name_scope('train_step'):
        should_stop = (tf.greater_equal(global_step, number_of_steps)
                       if number_of_steps else tf.constant(False))
        should_log = tf.equal(
            tf.math.floormod(global_step, log_every_n_steps), 0)
    return {'should_stop': should_stop, 'should_log': should_log}


def _check_supported(master, is_chief, sync_optimizer, trace_every_n_steps,
                     startup_delay_steps, number_of_steps, log_every_n_steps):
    if not is_chief:
        raise ValueError(
            'is_chief=False waits for a chief in another process; '
            'tf_prune.compat.v1.learning.train runs in this process only, as '
            'the chief')
    if master:
        raise ValueError(
            f'master={master!r}: tf_prune.compat.v1.learning.train runs in '
            f'this process only; leave master empty')
    if sync_optimizer is not None:
        raise ValueError(
            'sync_optimizer is not supported: SyncReplicasOptimizer needs '
            'the distributed runtime slim set up; train without it')
    if trace_every_n_steps is not None:
        raise ValueError(
            'trace_every_n_steps is not supported: use the TensorBoard '
            'profiler (tf.profiler.experimental) instead')
    if startup_delay_steps:
        raise ValueError(
            f'startup_delay_steps={startup_delay_steps} applies to replicas; '
            f'leave it 0 in a single-process training')
    if number_of_steps is not None and number_of_steps <= 0:
        raise ValueError(
            f'number_of_steps must be positive or None, got {number_of_steps}')
    if log_every_n_steps <= 0:
        raise ValueError(
            f'log_every_n_steps must be positive, got {log_every_n_steps}')


def train(train_op, logdir, mask_update_op, train_step_fn=train_step,
          train_step_kwargs=_USE_DEFAULT, log_every_n_steps=1, graph=None,
          master='', is_chief=True, global_step=None, number_of_steps=None,
          init_op=_USE_DEFAULT, init_feed_dict=None,
          local_init_op=_USE_DEFAULT, init_fn=None, ready_op=_USE_DEFAULT,
          summary_op=_USE_DEFAULT, save_summaries_secs=600,
          summary_writer=_USE_DEFAULT, startup_delay_steps=0, saver=None,
          save_interval_secs=600, sync_optimizer=None, session_config=None,
          trace_every_n_steps=None):
    """Trains with slim's loop, running `mask_update_op` after each step.

    Checkpoints (every `save_interval_secs` and at the end) and summaries
    (every `save_summaries_secs`) go to `logdir`; a training started again
    in the same `logdir` resumes from its latest checkpoint.

    Args:
      train_op: an op or tensor that applies the gradients and returns the
        loss.
      logdir: the directory for checkpoints and summaries; None writes
        neither.
      mask_update_op: the op updating the masks (usually
        `Pruning.conditional_mask_update_op()`).
      train_step_fn: `fn(sess, train_op, global_step, train_step_kwargs)`
        returning (loss, should_stop).
      train_step_kwargs: the dict passed to `train_step_fn`; by default
        `should_stop` (the global step reached `number_of_steps`) and
        `should_log` (every `log_every_n_steps` steps).
      log_every_n_steps: how often the default step logs the loss.
      graph: the graph; the default graph when None.
      master: must be '' (one process).
      is_chief: must be True (this process is the chief).
      global_step: the global step; the graph's when None.
      number_of_steps: stop when the global step reaches it; None runs
        until `train_step_fn` says to stop.
      init_op: the initialization op; all global variables by default.
      init_feed_dict: the feed dict for `init_op`.
      local_init_op: local variables and tables by default.
      init_fn: `fn(sess)` run after `init_op`, e.g. to restore weights.
      ready_op: the readiness check; uninitialized variables by default.
      summary_op: the summaries; all merged by default; None for none.
      save_summaries_secs: seconds between summaries; 0 or None for none.
      summary_writer: a `tf.compat.v1.summary.FileWriter`, None for none, or
        one made for `logdir` by default.
      startup_delay_steps: must be 0 (one process).
      saver: the checkpoint saver; a default one when None.
      save_interval_secs: seconds between checkpoints; 0 or None for only
        the final one.
      sync_optimizer: must be None.
      session_config: a `tf.compat.v1.ConfigProto` for the session.
      trace_every_n_steps: must be None.

    Returns:
      The loss of the last step.

    Raises:
      ValueError: `train_op` is None, or an argument this loop cannot honour
        is set (named in the message).
    """
    if train_op is None:
        raise ValueError('train_op cannot be None.')
    _check_supported(master, is_chief, sync_optimizer, trace_every_n_steps,
                     startup_delay_steps, number_of_steps, log_every_n_steps)
    graph = graph or v1.get_default_graph()
    with graph.as_default():
        if global_step is None:
            global_step = v1.train.get_or_create_global_step()
        if train_step_kwargs == _USE_DEFAULT:
            train_step_kwargs = _default_step_kwargs(
                global_step, number_of_steps, log_every_n_steps)
        scaffold = _scaffold(init_op, init_feed_dict, local_init_op, init_fn,
                             ready_op, summary_op, saver)
        # slim's summary_op=None is no summaries; a Scaffold's is the default.
        if summary_op is None:
            summary_writer = None
        hooks = _hooks(logdir, scaffold, save_summaries_secs, summary_writer,
                       save_interval_secs)
        session_creator = v1.train.ChiefSessionCreator(
            scaffold=scaffold, checkpoint_dir=logdir, config=session_config)
        total_loss = None
        with v1.train.MonitoredSession(session_creator, hooks) as sess:
            while not sess.should_stop():
                total_loss, should_stop = train_step_fn(
                    sess, train_op, global_step, train_step_kwargs)
                # Outside the hooks: they acted on the step itself.
                sess.run_step_fn(
                    lambda step_context: step_context.session.run(
                        mask_update_op))
                if should_stop:
                    logging.info('Stopping training.')
                    break
            if logdir:
                # The last checkpoint holds the last mask update.
                sess.run_step_fn(lambda step_context: scaffold.saver.save(
                    step_context.session, os.path.join(logdir, 'model.ckpt'),
                    global_step=global_step))
    return total_loss


def _scaffold(init_op, init_feed_dict, local_init_op, init_fn, ready_op,
              summary_op, saver):
    """A Scaffold of the arguments given; its defaults are slim's."""
    arguments = {'init_feed_dict': init_feed_dict, 'saver': saver}
    if init_fn is not None:
        arguments['init_fn'] = lambda scaffold, session: init_fn(session)
    for name, value in (('init_op', init_op), ('local_init_op', local_init_op),
                        ('ready_op', ready_op), ('summary_op', summary_op)):
        if value is not _USE_DEFAULT and value is not None:
            arguments[name] = value
    return v1.train.Scaffold(**arguments)


def _hooks(logdir, scaffold, save_summaries_secs, summary_writer,
           save_interval_secs):
    """The checkpoint and summary hooks for `logdir` (none without one)."""
    if not logdir:
        return []
    hooks = []
    # As slim's Supervisor: 0 or None seconds is no periodic saving.
    if save_interval_secs:
        hooks.append(v1.train.CheckpointSaverHook(
            logdir, save_secs=save_interval_secs, scaffold=scaffold))
    if summary_writer is not None and save_summaries_secs:
        writer = (None if summary_writer is _USE_DEFAULT else summary_writer)
        hooks.append(v1.train.SummarySaverHook(
            save_secs=save_summaries_secs, output_dir=logdir,
            summary_writer=writer, scaffold=scaffold))
    return hooks

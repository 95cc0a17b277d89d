"""Structured (channel) pruning: channel groups, channel masks on contrib's
schedule, and `shrink`, which removes channels for real.

`find_channel_groups(model)` finds the output channels of a Sequential or
Functional model that must go together. `tf_prune.prune` and
`tf_prune.Pruning` with `structure=channel` (`prune_channels`,
`ChannelPruning`, registered here as that structure) mask the channels of
each group on contrib's schedule; `shrink` then builds a smaller model that
computes the same. Without a schedule, `keep_top` picks the lowest-scoring
channels (`l1_scores`), `zero_channels` zeroes them in place and
`shrink(model, removed)` removes them. `cost` counts parameters and FLOPs.
`load_channel_pruned` reads a channel-pruned model from a file, and
`channel_report` compares it with its shrunk model, layer by layer.
"""

from tf_prune.keras import structures
from tf_prune.structured import cost
from tf_prune.structured.channels import ChannelPlan
from tf_prune.structured.channels import ChannelPruning
from tf_prune.structured.channels import prune_channels
from tf_prune.structured.groups import ChannelGroup
from tf_prune.structured.groups import ChannelGroups
from tf_prune.structured.groups import Member
from tf_prune.structured.groups import Unprunable
from tf_prune.structured.groups import describe_unprunable
from tf_prune.structured.groups import find_channel_groups
from tf_prune.structured.groups import keep_top
from tf_prune.structured.groups import l1_scores
from tf_prune.structured.groups import log_unprunable
from tf_prune.structured.groups import removed_channels
from tf_prune.structured.report import ChannelReport
from tf_prune.structured.report import NotChannelPruned
from tf_prune.structured.report import channel_report
from tf_prune.structured.report import check_channel_pruned
from tf_prune.structured.report import load_channel_pruned
from tf_prune.structured.shrink import masked_channels
from tf_prune.structured.shrink import shrink
from tf_prune.structured.shrink import zero_channels

structures.register('channel', structures.Structure(
    prune=prune_channels, controller=ChannelPruning))

__all__ = [
    'ChannelGroup', 'ChannelGroups', 'ChannelPlan', 'ChannelPruning',
    'ChannelReport', 'Member', 'NotChannelPruned', 'Unprunable',
    'channel_report', 'check_channel_pruned', 'cost', 'describe_unprunable',
    'find_channel_groups', 'keep_top', 'l1_scores', 'load_channel_pruned',
    'log_unprunable', 'masked_channels', 'prune_channels', 'removed_channels',
    'shrink', 'zero_channels',
]

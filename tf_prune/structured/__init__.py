"""Structured (channel) pruning: channel groups, and `shrink`, which removes
channels for real.

`find_channel_groups(model)` finds the output channels of a Sequential or
Functional model that must go together; `keep_top` picks the lowest-scoring
ones (`l1_scores`); `zero_channels` zeroes them in place and `shrink` builds a
smaller model that computes the same.
"""

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
from tf_prune.structured.shrink import shrink
from tf_prune.structured.shrink import zero_channels

__all__ = [
    'ChannelGroup', 'ChannelGroups', 'Member', 'Unprunable',
    'describe_unprunable', 'find_channel_groups', 'keep_top', 'l1_scores',
    'log_unprunable', 'removed_channels', 'shrink', 'zero_channels',
]

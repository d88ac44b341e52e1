"""Node types, one module per concept; importing this package registers them all."""

from ivr.nodes import (
    announcement,
    authenticate,
    callback,
    gather,
    hours,
    identify,
    logic,
    lookup,
    menu,
    queue,
    recording,
    say,
    say_data,
    survey,
    voicemail,
)
from ivr.nodes.base import NODE_TYPES, Node, node_type

__all__ = ["NODE_TYPES", "Node", "node_type", "announcement", "authenticate", "callback", "gather", "hours",
           "identify", "logic", "lookup",
           "menu", "queue", "say", "say_data", "survey", "recording", "voicemail"]

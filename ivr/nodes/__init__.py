"""Node types, one module per concept; importing this package registers them all."""

from ivr.flows.node import NODE_TYPES, Node, node_type
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

__all__ = ["NODE_TYPES", "Node", "node_type", "announcement", "authenticate", "callback", "gather", "hours",
           "identify", "logic", "lookup",
           "menu", "queue", "say", "say_data", "survey", "recording", "voicemail"]

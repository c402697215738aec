"""Tools podium provides to governed agents, and what a tool's author declares about theirs."""

from podium.tools._declare import declaration_of, tool
from podium.tools._outbox import Outbox, OutboxMessage, send_to_outbox

__all__ = ["Outbox", "OutboxMessage", "declaration_of", "send_to_outbox", "tool"]

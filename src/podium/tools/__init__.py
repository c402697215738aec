"""Tools podium provides to governed agents."""

from podium.tools._outbox import Outbox, OutboxMessage, send_to_outbox

__all__ = ["Outbox", "OutboxMessage", "send_to_outbox"]

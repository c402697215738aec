"""Tools podium provides to governed agents."""

from podium.tools._fees import fee_nano_usd, tool, tool_team
from podium.tools._outbox import Outbox, OutboxMessage, send_to_outbox

__all__ = ["Outbox", "OutboxMessage", "fee_nano_usd", "send_to_outbox", "tool", "tool_team"]

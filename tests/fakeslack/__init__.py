"""A loopback fake of Slack's Web API, response URLs and Socket Mode, and helpers that
sign requests the way Slack does (tests of the real Bolt app). See :mod:`.server`."""

from .server import Call, Channel, FakeSlack, Fault, Posted
from .signing import SlackRequests, sign

__all__ = ["Call", "Channel", "FakeSlack", "Fault", "Posted", "SlackRequests", "sign"]

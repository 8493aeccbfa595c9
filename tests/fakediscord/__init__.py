"""A loopback fake Discord (REST API v10 + gateway) for tests with the real discord.py."""

from . import faults
from .client import fast_client_options, fast_identify, redirect_discord
from .faults import Scripted
from .models import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from .recording import GatewayFrame, RecordedRequest, UploadedFile
from .server import FakeDiscord, FakeInteraction

__all__ = [
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "GatewayFrame",
    "RecordedRequest",
    "Scripted",
    "UploadedFile",
    "fast_client_options",
    "fast_identify",
    "faults",
    "redirect_discord",
]

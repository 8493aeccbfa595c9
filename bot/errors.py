"""One exception tree for Briefbot.

Every error the core raises on purpose is a :class:`BriefbotError`. Its ``str()`` is a
message fit to show a user as it is (no traceback, no internals). Adapters map the tree
to platform replies in one place (``bot.adapters.errors``-style handlers); anything that
is *not* a BriefbotError is a bug: adapters log it and show a generic apology.
"""

from __future__ import annotations


class BriefbotError(Exception):
    """Base of every expected error. ``str(err)`` is user-facing."""

    #: process exit status for CLI commands that fail with this error
    exit_code: int = 1


class ConfigError(BriefbotError):
    """A config file or setting is invalid. Names the file, the key and the problem."""

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        parts = [p for p in (source, key) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class InputError(BriefbotError):
    """Bad input from a user or a CLI argument (a command's argument, an input file)."""

    exit_code = 2


class NotFoundError(InputError):
    """A named thing (entry, feed, channel) does not exist."""


class PermissionDenied(BriefbotError):
    """The caller may not do this (e.g. change a channel's config without Manage Server)."""


class FeedError(BriefbotError):
    """A feed could not be fetched or parsed. Recorded on the feed; never breaks a cycle."""

    def __init__(self, message: str, *, url: str | None = None, retry_after: float | None = None):
        self.url = url
        self.retry_after = retry_after
        super().__init__(message)


class FetchError(FeedError):
    """Network-level failure: DNS, connect, timeout, HTTP status, size cap."""


class ParseError(FeedError):
    """The body is not a feed feedparser can read."""


class UnsafeURLError(InputError):
    """A user-supplied URL is refused (scheme, or host resolves to a private address)."""


class StorageError(BriefbotError):
    """The database failed in a way the user should hear about."""


class DeliveryError(BriefbotError):
    """A platform refused or failed a delivery."""

    def __init__(self, message: str, *, permanent: bool = False):
        self.permanent = permanent
        super().__init__(message)

"""The one place where Slack API errors become pause reasons, retries or user messages.

- :data:`PAUSING`: errors that will not go away by retrying (the channel is gone or
  archived, the bot is not in it, the token is revoked or the workspace inactive): the
  Outbox pauses the channel's deliveries with :func:`pause_reason`, and
  ``/briefbot status`` says why.
- A 429 that outlived slack_sdk's own waits (``Retry-After``), a 5xx, a dropped
  connection or a timeout are transient: retried later by the Outbox.
- Anything else (``invalid_blocks``, ``msg_too_long``...) is our bug: logged loudly,
  retried a bounded number of times, never pausing the channel.

:func:`user_message` is what a user sees when a command's own Slack call failed.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

#: error code -> why, as a sentence for /briefbot status
PAUSING: dict[str, str] = {
    "channel_not_found": "the channel no longer exists, or the bot cannot see it",
    "not_in_channel": "the bot is not a member of this channel: invite it with /invite @Briefbot",
    "is_archived": "the channel is archived",
    "invalid_auth": "Slack refused the bot token (invalid_auth): reinstall Briefbot",
    "account_inactive": "the bot's token belongs to a deactivated app or workspace",
    "token_revoked": "the bot's token was revoked: reinstall Briefbot",
    "token_expired": "the bot's token expired: reinstall Briefbot",
    "no_permission": "the bot lacks permission to post here",
    "restricted_action": "the workspace does not let the bot post here",
    "team_access_not_granted": "the workspace did not grant Briefbot access",
    "missing_scope": "the app lacks a scope it needs: reinstall it from the manifest",
}

MANAGE_DENIED = (
    "Changing this channel's setup needs a workspace admin or owner (or a user listed in "
    "Briefbot's [slack] managers setting). Ask one of them, or use /briefbot brief, "
    "/briefbot watchlist and /briefbot status to look."
)
APOLOGY = (
    "Sorry, something went wrong on Briefbot's side. It has been logged; please try "
    "again in a minute, and check /briefbot status if it keeps happening."
)
NOT_A_CHANNEL = "Briefbot's commands work in a channel, not in direct messages."


def error_code(err: BaseException) -> str | None:
    """Slack's ``error`` string of an API error, else None."""
    if isinstance(err, SlackApiError):
        data = err.response.data if err.response is not None else None
        if isinstance(data, dict):
            code = data.get("error")
            return str(code) if code else None
    return None


def status_of(err: SlackApiError) -> int:
    return int(getattr(err.response, "status_code", 0) or 0)


def pauses(err: BaseException) -> bool:
    """True if the error means the channel's deliveries should pause."""
    return error_code(err) in PAUSING


def pause_reason(err: BaseException) -> str:
    """Why posting stopped, for /briefbot status (``not_in_channel``: invite it...)."""
    code = error_code(err) or "error"
    return f"Slack answered {code}: {PAUSING.get(code, 'Slack refused the message')}"


def user_message(err: BaseException) -> str:
    """What the user sees when a Slack call made for their command failed."""
    code = error_code(err)
    if code in PAUSING:
        return f"Slack answered {code}: {PAUSING[code]}."
    if code == "ratelimited":
        return "Slack is rate-limiting Briefbot right now; try again in a minute."
    if code == "expired_trigger_id":
        return "That took too long for Slack; please run the command again."
    return APOLOGY

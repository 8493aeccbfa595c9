"""Server-side checks Discord applies, answered with Discord's error shapes.

``Invalid Form Body`` (code 50035) carries an ``errors`` tree whose leaves are
``{"_errors": [{"code": ..., "message": ...}]}``: discord.py flattens it into
``HTTPException.text`` and ``CommandSyncFailure`` reads it per command.
"""

from __future__ import annotations

import re
from typing import Any

Errors = dict[str, Any]

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
EMBED_LIMITS = {
    "title": 256,
    "description": 4096,
    "footer.text": 2048,
    "author.name": 256,
}
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FIELDS_MAX = 25
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
CONTENT_MAX = 2000
NONCE_MAX = 25
ATTACHMENTS_MAX = 10

CHOICES_MAX = 25
OPTIONS_MAX = 25
COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")


def leaf(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def invalid_form_body(errors: Errors) -> dict[str, Any]:
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors}


def _max_len(value: Any, limit: int) -> dict[str, Any] | None:
    if isinstance(value, str) and len(value) > limit:
        return leaf("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return None


def _embed_errors(embed: dict[str, Any]) -> tuple[Errors, int]:
    errors: Errors = {}
    total = 0
    for dotted, limit in EMBED_LIMITS.items():
        parts = dotted.split(".")
        value: Any = embed
        for p in parts:
            value = value.get(p) if isinstance(value, dict) else None
        if isinstance(value, str):
            total += len(value)
            err = _max_len(value, limit)
            if err:
                node = errors
                for p in parts[:-1]:
                    node = node.setdefault(p, {})
                node[parts[-1]] = err
    fields = embed.get("fields") or []
    if len(fields) > FIELDS_MAX:
        errors["fields"] = leaf("BASE_TYPE_MAX_LENGTH", f"Must be {FIELDS_MAX} or fewer in length.")
    for i, f in enumerate(fields):
        ferr: Errors = {}
        name, value = f.get("name"), f.get("value")
        for key, val, limit in (("name", name, FIELD_NAME_MAX), ("value", value, FIELD_VALUE_MAX)):
            if not isinstance(val, str) or not val:
                ferr[key] = leaf("BASE_TYPE_REQUIRED", "This field is required")
            else:
                total += len(val)
                err = _max_len(val, limit)
                if err:
                    ferr[key] = err
        if ferr:
            errors.setdefault("fields", {})[str(i)] = ferr
    return errors, total


def message_errors(
    payload: dict[str, Any], *, n_files: int = 0, require_content: bool = True
) -> dict[str, Any] | None:
    """The error body Discord answers a message create/edit with, or None if valid."""
    errors: Errors = {}
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        errors["content"] = leaf("BASE_TYPE_STRING", "Must be a string.")
    elif err := _max_len(content, CONTENT_MAX):
        errors["content"] = err
    embeds = payload.get("embeds") or []
    if len(embeds) > EMBEDS_MAX:
        errors["embeds"] = leaf("BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_MAX} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        eerr, n = _embed_errors(embed)
        total += n
        if eerr:
            errors.setdefault("embeds", {})[str(i)] = eerr
    if total > EMBED_TOTAL_MAX and "embeds" not in errors:
        errors["embeds"] = leaf(
            "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}"
        )
    nonce = payload.get("nonce")
    if nonce is not None and len(str(nonce)) > NONCE_MAX:
        errors["nonce"] = leaf("BASE_TYPE_MAX_LENGTH", f"Must be {NONCE_MAX} or fewer in length.")
    if n_files > ATTACHMENTS_MAX:
        errors["files"] = leaf(
            "BASE_TYPE_MAX_LENGTH", f"Must be {ATTACHMENTS_MAX} or fewer in length."
        )
    if errors:
        return invalid_form_body(errors)
    if require_content and not (
        content
        or embeds
        or n_files
        or payload.get("sticker_ids")
        or payload.get("components")
        or payload.get("poll")
    ):
        return {"message": "Cannot send an empty message", "code": 50006}
    return None


def autocomplete_errors(data: dict[str, Any]) -> dict[str, Any] | None:
    choices = data.get("choices")
    if not isinstance(choices, list):
        return invalid_form_body(
            {"data": {"choices": leaf("BASE_TYPE_REQUIRED", "This field is required")}}
        )
    if len(choices) > CHOICES_MAX:
        return invalid_form_body(
            {
                "data": {
                    "choices": leaf(
                        "BASE_TYPE_MAX_LENGTH", f"Must be {CHOICES_MAX} or fewer in length."
                    )
                }
            }
        )
    errors: Errors = {}
    for i, c in enumerate(choices):
        name = c.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            errors[str(i)] = {
                "name": leaf("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            }
        value = c.get("value")
        if isinstance(value, str) and len(value) > 100:
            errors.setdefault(str(i), {})["value"] = leaf(
                "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )
    if errors:
        return invalid_form_body({"data": {"choices": errors}})
    return None


def _option_errors(options: list[dict[str, Any]]) -> Errors:
    errors: Errors = {}
    if len(options) > OPTIONS_MAX:
        return leaf("BASE_TYPE_MAX_LENGTH", f"Must be {OPTIONS_MAX} or fewer in length.")
    seen_optional = False
    for i, opt in enumerate(options):
        oerr = _name_desc_errors(opt)
        if opt.get("type") in (1, 2):
            sub = _option_errors(opt.get("options") or [])
            if sub:
                oerr["options"] = sub
        else:
            if opt.get("required"):
                if seen_optional:
                    oerr["required"] = leaf(
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            choices = opt.get("choices") or []
            if len(choices) > CHOICES_MAX:
                oerr["choices"] = leaf(
                    "BASE_TYPE_MAX_LENGTH", f"Must be {CHOICES_MAX} or fewer in length."
                )
        if oerr:
            errors[str(i)] = oerr
    return errors


def _name_desc_errors(obj: dict[str, Any], *, chat_input: bool = True) -> Errors:
    errors: Errors = {}
    name = obj.get("name")
    if (
        not isinstance(name, str)
        or not COMMAND_NAME_RE.match(name)
        or (chat_input and name != name.lower())
    ):
        errors["name"] = leaf(
            "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
        )
    desc = obj.get("description")
    if chat_input and (not isinstance(desc, str) or not 1 <= len(desc) <= 100):
        errors["description"] = leaf("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return errors


def commands_errors(commands: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Bulk overwrite validation, keyed by the command's index like Discord does."""
    errors: Errors = {}
    names: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        ctype = cmd.get("type", 1)
        cerr = _name_desc_errors(cmd, chat_input=ctype == 1)
        if ctype == 1:
            oerr = _option_errors(cmd.get("options") or [])
            if oerr:
                cerr["options"] = oerr
        key = (ctype, str(cmd.get("name")))
        if key in names:
            cerr.setdefault(
                "name",
                leaf(
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                ),
            )
        names.add(key)
        if cerr:
            errors[str(i)] = cerr
    if errors:
        return invalid_form_body(errors)
    return None

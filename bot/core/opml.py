"""OPML import and export (``/feeds import``, ``/feeds export``).

OPML is the interchange format of feed readers: ``<opml><body><outline xmlUrl=...>``,
with outlines possibly nested in folders. Imported files come from chat users, so the
parser refuses DTDs and entity declarations (no entity expansion attacks) and caps the
size and the number of feeds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime

from yarl import URL

from bot.core.models import FeedSource
from bot.errors import InputError

MAX_OPML_BYTES = 1_000_000
MAX_OPML_FEEDS = 500


def _decode(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if not raw.strip():
        raise InputError("the OPML file is empty")
    if len(raw) > MAX_OPML_BYTES:
        raise InputError(f"the OPML file is too large (over {MAX_OPML_BYTES // 1000} kB)")
    head = raw[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in raw.lower():
        raise InputError("OPML files with a DOCTYPE or entity declarations are not accepted")
    return raw


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _name_for(url: str) -> str:
    try:
        return URL(url).host or url
    except ValueError:
        return url


def parse_opml(data: bytes | str) -> list[FeedSource]:
    """The feeds in an OPML document, in document order, without duplicate URLs.

    Raises :class:`InputError` if it is not OPML or lists no feed."""
    raw = _decode(data)
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs and entities refused above
    except ET.ParseError as err:
        raise InputError(f"not a valid OPML file: {err}") from None
    if _local(root.tag) != "opml":
        raise InputError(f"not an OPML file (the root element is <{_local(root.tag)}>)")
    body = next((el for el in root if _local(el.tag) == "body"), None)
    if body is None:
        raise InputError("not a valid OPML file: it has no <body>")
    out: list[FeedSource] = []
    seen: set[str] = set()
    for el in body.iter():
        if _local(el.tag) != "outline":
            continue
        attrs = {k.rsplit("}", 1)[-1].lower(): v for k, v in el.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        name = (attrs.get("title") or attrs.get("text") or "").strip() or _name_for(url)
        lang = (attrs.get("language") or "").strip() or None
        out.append(FeedSource(url=url, name=name, lang=lang))
        if len(out) > MAX_OPML_FEEDS:
            raise InputError(f"the OPML file lists more than {MAX_OPML_FEEDS} feeds")
    if not out:
        raise InputError("the OPML file lists no feeds (no <outline> with an xmlUrl)")
    return out


def export_opml(
    feeds: Iterable[FeedSource], *, title: str = "Briefbot feeds", created: datetime | None = None
) -> bytes:
    """An OPML 2.0 document listing ``feeds`` (UTF-8 bytes)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    if created is not None:
        ET.SubElement(head, "dateCreated").text = format_datetime(created)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.lang:
            attrs["language"] = feed.lang
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    # typeshed types tostring() with a byte encoding as Any; it returns bytes
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"

"""SqlStorage feeds: config sync, chat feeds per channel, fetch results and health
(SQLite in memory and in a file, PostgreSQL when configured: see storage_support)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from storage_support import (
    A_URL,
    B_URL,
    BACKENDS,
    C_URL,
    DAY,
    T0,
    feed_ids,
    item,
    keys,
    open_storage,
    setup_feeds,
)

from bot.core.models import FeedSource
from bot.errors import InputError, NotFoundError
from bot.storage.sql import SqlStorage


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with open_storage(request.param, tmp_path) as s:
        yield s


# -- feeds ---------------------------------------------------------------------------


async def test_sync_config_feeds_adds_renames_and_retires(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    assert set(ids) == {A_URL, B_URL}
    states = {f.url: f for f in await storage.feed_states()}
    assert states[A_URL].name == "Outlet A"
    assert states[A_URL].lang == "en"
    assert states[A_URL].origin == "config"
    assert states[A_URL].consecutive_failures == 0
    assert states[A_URL].next_poll_at is None

    await storage.record_fetch_success(
        ids[A_URL],
        at=T0,
        next_poll_at=T0 + timedelta(minutes=15),
        etag='"abc"',
        last_modified="Fri, 01 Mar 2024 12:00:00 GMT",
        content_hash="h1",
    )
    # rename A, drop B, add C
    await storage.sync_config_feeds(
        [FeedSource(A_URL, "Outlet A renamed"), FeedSource(C_URL, "Outlet C")]
    )
    states = {f.url: f for f in await storage.feed_states()}
    assert set(states) == {A_URL, C_URL}
    a = states[A_URL]
    assert a.id == ids[A_URL]
    assert a.name == "Outlet A renamed"
    assert a.lang is None
    assert (a.etag, a.last_modified, a.content_hash) == (
        '"abc"',
        "Fri, 01 Mar 2024 12:00:00 GMT",
        "h1",
    )
    assert a.next_poll_at == T0 + timedelta(minutes=15)
    assert a.next_poll_at is not None
    assert a.next_poll_at.tzinfo is not None

    # B comes back: same row, history kept
    await storage.sync_config_feeds([FeedSource(B_URL, "Outlet B")])
    states = {f.url: f for f in await storage.feed_states()}
    assert set(states) == {B_URL}
    assert states[B_URL].id == ids[B_URL]


async def test_retired_config_feed_lives_on_for_a_channel_that_added_it(
    storage: SqlStorage,
) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "100")
    other = await storage.get_channel("discord", "200")
    # a config feed the channel explicitly adds is already followed
    with pytest.raises(InputError, match="already follows"):
        await storage.add_feed(FeedSource(A_URL, "A"), channel_id=ch.id)
    await storage.remove_feed(ch.id, ids[A_URL])
    state = await storage.add_feed(FeedSource(A_URL, "A"), channel_id=ch.id)
    assert state.id == ids[A_URL]

    await storage.sync_config_feeds([FeedSource(B_URL, "Outlet B")])
    active = {f.url: f for f in await storage.feed_states()}
    assert active[A_URL].origin == "chat"
    assert [f.url for f in await storage.channel_feeds(ch.id)] == [A_URL, B_URL]
    assert [f.url for f in await storage.channel_feeds(other.id)] == [B_URL]

    # once its last subscriber leaves, it is no longer polled
    await storage.remove_feed(ch.id, ids[A_URL])
    assert A_URL not in await feed_ids(storage)


async def test_add_and_remove_chat_feeds(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch1 = await storage.get_channel("discord", "1")
    ch2 = await storage.get_channel("slack", "C2")
    st = await storage.add_feed(FeedSource(C_URL, "Outlet C", "de"), channel_id=ch1.id)
    assert (st.url, st.name, st.lang, st.origin) == (C_URL, "Outlet C", "de", "chat")
    with pytest.raises(InputError, match=r"already follows Outlet C"):
        await storage.add_feed(FeedSource(C_URL, "Other name"), channel_id=ch1.id)
    # a second channel reuses the row
    st2 = await storage.add_feed(FeedSource(C_URL, "Other name"), channel_id=ch2.id)
    assert st2.id == st.id
    assert st2.name == "Outlet C"

    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL, B_URL, C_URL]
    await storage.remove_feed(ch1.id, st.id)
    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL, B_URL]
    assert C_URL in await feed_ids(storage)  # ch2 still follows it
    await storage.remove_feed(ch2.id, st.id)
    assert C_URL not in await feed_ids(storage)
    assert C_URL not in [f.url for f in await storage.all_feeds()]

    # removing a config feed hides it for that channel only
    await storage.remove_feed(ch1.id, ids[B_URL])
    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL]
    assert [f.url for f in await storage.channel_feeds(ch2.id)] == [A_URL, B_URL]
    assert B_URL in await feed_ids(storage)
    with pytest.raises(NotFoundError, match="does not follow"):
        await storage.remove_feed(ch1.id, ids[B_URL])
    with pytest.raises(NotFoundError):
        await storage.remove_feed(ch1.id, 9999)

    # re-adding a removed feed brings it back
    again = await storage.add_feed(FeedSource(C_URL, "Outlet C"), channel_id=ch1.id)
    assert again.id == st.id
    assert C_URL in await feed_ids(storage)


async def test_add_feed_needs_an_existing_channel(storage: SqlStorage) -> None:
    with pytest.raises(NotFoundError):
        await storage.add_feed(FeedSource(C_URL, "C"), channel_id=424242)
    assert await storage.all_feeds() == []


async def test_due_feeds_and_fetch_results(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a, b = ids[A_URL], ids[B_URL]
    assert {f.id for f in await storage.due_feeds(T0)} == {a, b}

    await storage.record_fetch_success(
        a,
        at=T0,
        next_poll_at=T0 + timedelta(minutes=15),
        etag="e",
        last_modified=None,
        content_hash=None,
    )
    await storage.record_fetch_failure(
        b, at=T0, next_poll_at=T0 + timedelta(minutes=2), error="HTTP 503"
    )
    assert await storage.due_feeds(T0 + timedelta(minutes=1)) == []
    assert [f.id for f in await storage.due_feeds(T0 + timedelta(minutes=2))] == [b]
    assert {f.id for f in await storage.due_feeds(T0 + timedelta(hours=1))} == {a, b}

    await storage.record_fetch_failure(
        b,
        at=T0 + timedelta(minutes=2),
        next_poll_at=T0 + timedelta(minutes=6),
        error="timeout",
    )
    health = {f.id: f for f in await storage.all_feeds()}
    assert health[a].last_success_at == T0
    assert not health[a].failing
    assert health[b].consecutive_failures == 2
    assert health[b].failing
    assert health[b].last_error == "timeout"
    assert health[b].last_error_at == T0 + timedelta(minutes=2)
    assert health[b].last_success_at is None
    state_b = next(f for f in await storage.feed_states() if f.id == b)
    assert state_b.consecutive_failures == 2

    # a success resets the count and keeps the validators it is given
    await storage.record_fetch_success(
        b,
        at=T0 + timedelta(minutes=6),
        next_poll_at=T0 + DAY,
        etag=None,
        last_modified="lm",
        content_hash="hash",
    )
    state_b = next(f for f in await storage.feed_states() if f.id == b)
    assert state_b.consecutive_failures == 0
    assert (state_b.etag, state_b.last_modified, state_b.content_hash) == (None, "lm", "hash")

    with pytest.raises(NotFoundError):
        await storage.record_fetch_failure(999, at=T0, next_poll_at=T0, error="x")
    with pytest.raises(NotFoundError):
        await storage.record_fetch_success(
            999, at=T0, next_poll_at=T0, etag=None, last_modified=None, content_hash=None
        )


async def test_failures_between(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    await storage.record_fetch_failure(
        ids[A_URL], at=T0 - DAY, next_poll_at=T0, error="old failure"
    )
    await storage.record_fetch_failure(
        ids[B_URL], at=T0 + timedelta(hours=1), next_poll_at=T0, error="HTTP 404"
    )
    # A recovered since, but its failure in the window still counts
    await storage.record_fetch_success(
        ids[A_URL],
        at=T0 + timedelta(hours=2),
        next_poll_at=T0 + DAY,
        etag=None,
        last_modified=None,
        content_hash=None,
    )
    window = await storage.failures_between(T0, T0 + DAY)
    assert [f.url for f in window] == [B_URL]
    assert window[0].last_error == "HTTP 404"
    assert [f.url for f in await storage.failures_between(T0 - DAY, T0 + DAY)] == [A_URL, B_URL]
    assert await storage.failures_between(T0 + DAY, T0 + 2 * DAY) == []
    # end is exclusive
    assert await storage.failures_between(T0 - 2 * DAY, T0 - DAY) == []


async def test_feed_title_replaces_a_bare_url_name_only(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    st = await storage.add_feed(FeedSource(C_URL, C_URL), channel_id=ch.id)
    await setup_feeds(storage)
    ids = await feed_ids(storage)
    for feed_id in (st.id, ids[A_URL]):
        await storage.record_fetch_success(
            feed_id,
            at=T0,
            next_poll_at=T0,
            etag=None,
            last_modified=None,
            content_hash=None,
            title="  The Feed's Own Title ",
        )
    names = {f.url: f.name for f in await storage.feed_states()}
    assert names[C_URL] == "The Feed's Own Title"
    assert names[A_URL] == "Outlet A"


async def test_feed_by_url_finds_one_active_feed(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    found = await storage.feed_by_url(A_URL)
    assert found is not None
    assert (found.id, found.url, found.name, found.item_count) == (ids[A_URL], A_URL, "Outlet A", 0)
    assert found == next(f for f in await storage.all_feeds() if f.url == A_URL)
    one = item(1)
    await storage.insert_items(ids[A_URL], [(one, keys(one))], fetched_at=T0)
    assert (await storage.feed_by_url(A_URL)).item_count == 1  # type: ignore[union-attr]
    assert await storage.feed_by_url(A_URL + "?x=1") is None  # the URL as stored, exactly
    assert await storage.feed_by_url(C_URL) is None
    # a chat feed nobody follows any more is not active: not found
    ch = await storage.get_channel("discord", "1")
    st = await storage.add_feed(FeedSource(C_URL, "Outlet C"), channel_id=ch.id)
    assert (await storage.feed_by_url(C_URL)).id == st.id  # type: ignore[union-attr]
    await storage.remove_feed(ch.id, st.id)
    assert await storage.feed_by_url(C_URL) is None

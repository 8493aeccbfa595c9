"""Full-text search over stored items: FTS5 on SQLite, a tsvector expression index on
PostgreSQL, substring matching (LIKE) for CJK queries on both."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    case,
    column,
    func,
    literal_column,
    or_,
    table,
)
from sqlalchemy.exc import OperationalError

from bot.core.ports import SearchHit
from bot.core.text import CJK as _CJK  # FTS5 cannot split these into words: LIKE
from bot.core.text import normalize
from bot.errors import InputError
from bot.storage.engine import StorageBase, as_utc
from bot.storage.queries import in_channel, item_select, items, to_stored, when

MAX_QUERY_CHARS = 300
_WORDCHAR = re.compile(r"[^\W_]")
#: SQLite's FTS5 index (created by the migration, not a model)
_ITEMS_FTS = table("items_fts", column("rowid", Integer))
#: the PostgreSQL text-search vector; must be the expression of the ix_items_fts index
_PG_TSVECTOR = "to_tsvector('english', items.title_plain || ' ' || items.summary_plain)"


class SearchMixin(StorageBase):
    """The search part of the :class:`~bot.core.ports.ItemStore`."""

    async def search(
        self,
        query: str,
        *,
        since: datetime | None,
        limit: int = 10,
        fetched_since: datetime | None = None,
        channel_id: int | None = None,
    ) -> list[SearchHit]:
        """Every word must occur (the last one also as a prefix, on SQLite); words in
        double quotes must occur together, in that order (a phrase). Ranked by bm25 /
        ts_rank with titles weighted up, then newest first. ``rank``: higher is better.
        ``since`` filters on published-else-fetched time, ``fetched_since`` on fetched
        time. ``channel_id``: only items from the channel's feeds, filtered in the query
        (so the best ``limit`` of them, however many better hits other feeds have). CJK
        queries use substring matching (LIKE), as word tokenizers cannot split CJK text."""
        query = normalize(query)
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"That search is too long (at most {MAX_QUERY_CHARS} characters).")
        terms = self._search_terms(query)
        if not terms:
            raise InputError("Give at least one word to search for.")
        limit = max(1, min(int(limit), 100))
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(when() >= as_utc(since))
        if fetched_since is not None:
            conditions.append(items.c.fetched_at >= as_utc(fetched_since))
        if channel_id is not None:
            conditions.append(in_channel(channel_id))  # the item's own feed (joined)
        if _CJK.search(query):
            stmt = self._like_search(terms)
        elif self.dialect == "sqlite":
            stmt = self._fts5_search(terms)
        else:
            stmt = self._pg_search(terms)
        stmt = stmt.where(*conditions).order_by(
            literal_column("score").desc(), when().desc(), items.c.id.desc()
        )
        async with self._read() as conn:
            try:
                rows = (await conn.execute(stmt.limit(limit))).all()
            except OperationalError as err:  # defensive: quoting should prevent this
                raise InputError(f"Cannot search for {query!r}.") from err
        return [SearchHit(to_stored(r), float(r.score)) for r in rows]

    @staticmethod
    def _search_terms(query: str) -> list[tuple[str, bool]]:
        """The (normalized) query as ``(text, is_phrase)`` terms, in order: the words
        inside a pair of double quotes are one phrase; an unpaired quote is an ordinary
        character; a word without any letter or digit is dropped."""

        def words(text: str) -> list[str]:
            return [w for w in text.split() if _WORDCHAR.search(w)]

        terms: list[tuple[str, bool]] = []
        pos = 0
        for m in re.finditer(r'"([^"]*)"', query):
            terms.extend((w, False) for w in words(query[pos : m.start()]))
            phrase = words(m.group(1))
            if phrase:
                terms.append((" ".join(phrase), True))
            pos = m.end()
        terms.extend((w, False) for w in words(query[pos:]))
        return terms

    def _fts5_search(self, terms: list[tuple[str, bool]]) -> Select[Any]:
        # each term is an FTS5 string (a phrase of the tokens in it); a bare last word
        # also matches as a prefix (search as you type)
        parts = ['"' + text.replace('"', '""') + '"' for text, _ in terms]
        if not terms[-1][1]:
            parts[-1] += "*"
        match = " ".join(parts)
        rank = (-func.bm25(literal_column("items_fts"), 3.0, 1.0)).label("score")
        return (
            item_select(rank)
            .join(_ITEMS_FTS, _ITEMS_FTS.c.rowid == items.c.id)
            .where(literal_column("items_fts").op("MATCH")(match))
        )

    def _pg_search(self, terms: list[tuple[str, bool]]) -> Select[Any]:
        vector: ColumnElement[Any] = literal_column(_PG_TSVECTOR)
        english: ColumnElement[Any] = literal_column("'english'")
        words = " ".join(text for text, phrase in terms if not phrase)
        queries: list[ColumnElement[Any]] = [func.plainto_tsquery(english, words)] if words else []
        queries.extend(func.phraseto_tsquery(english, text) for text, phrase in terms if phrase)
        tsquery = queries[0]
        for more in queries[1:]:
            tsquery = tsquery.op("&&")(more)
        weighted = func.setweight(
            func.to_tsvector(english, items.c.title_plain),
            literal_column("'A'"),
        ).op("||")(func.to_tsvector(english, items.c.summary_plain))
        rank = func.ts_rank(weighted, tsquery).label("score")
        return item_select(rank).where(vector.op("@@")(tsquery))

    def _like_search(self, terms: list[tuple[str, bool]]) -> Select[Any]:
        conditions = []
        score: ColumnElement[Any] = literal_column("0")
        for text, _ in terms:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
            in_title = items.c.title_plain.ilike(pattern, escape="\\")
            in_summary = items.c.summary_plain.ilike(pattern, escape="\\")
            conditions.append(or_(in_title, in_summary))
            score = score + case((in_title, 3.0), else_=0.0) + case((in_summary, 1.0), else_=0.0)
        return item_select(score.label("score")).where(*conditions)

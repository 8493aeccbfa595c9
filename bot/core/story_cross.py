"""Stories across languages: an English and a Chinese report of one event.

Two titles in different scripts share no words, so :mod:`bot.core.stories` joins such
a pair on other evidence, all of it required (a wrong merge hides a story):

- **time**: published within :data:`CROSS_WINDOW` of each other;
- **tracked entries**: at least one entry matched in both titles, and every tracked
  actor one title names is matched somewhere in the other item ("李强会见阿尔巴尼斯"
  and "Li Qiang meets Wang Yi" stay apart);
- **wording**: the two texts (title and summary) share news concepts from a small
  bilingual glossary (:data:`GLOSSARY`: 会晤 ~ meet, 旧金山 ~ San Francisco, 进博会 ~
  expo..., simplified and traditional), Chinese segmented into words with jieba. One
  shared title entry needs two shared concepts, two or more need one;
- **preview vs. event**: a Chinese title that announces (将, 拟, 即将) is only joined
  to an English one that announces too ("to meet", "will visit"), and the other way
  round.

jieba is initialised once, on first use, with its logging silenced; it ships its
dictionary in the wheel (nothing is downloaded).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from bot.core.ports import MatchedItem
from bot.core.story_text import split_words
from bot.core.text import CJK, plain

#: how far apart two reports in different languages may be published
CROSS_WINDOW = timedelta(hours=24)

#: (concept, English tokens as :func:`bot.core.story_text.word_tokens` gives them,
#: Chinese words)
GLOSSARY: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "meet",
        ("meet", "met", "meeting", "summit", "talk", "sit-down"),
        ("会晤", "会见", "会面", "会谈", "峰会", "元首会晤", "會晤", "會見", "會談", "峰會"),
    ),
    ("san-francisco", ("francisco",), ("旧金山", "舊金山")),
    ("washington", ("washington",), ("华盛顿", "華盛頓")),
    ("beijing", ("beijing",), ("北京",)),
    ("shanghai", ("shanghai",), ("上海",)),
    ("california", ("california",), ("加州", "加利福尼亚")),
    ("expo", ("expo", "fair", "exhibition"), ("进博会", "博览会", "展会", "进口博览会")),
    ("import", ("import",), ("进口",)),
    ("export", ("export", "exports"), ("出口",)),
    ("controls", ("control", "curb"), ("管制", "限制")),
    ("chip", ("chip", "semiconductor"), ("芯片", "半导体", "晶片", "半導體")),
    ("climate", ("climate",), ("气候", "氣候")),
    ("envoy", ("envoy",), ("特使",)),
    ("premier", ("premier",), ("总理",)),
    ("apec", ("apec",), ("亚太经合组织", "亚太经合", "APEC")),
    ("military", ("military", "army"), ("军事", "两军", "军队", "軍事", "兩軍")),
    ("trade", ("trade",), ("贸易", "经贸", "貿易", "經貿")),
    ("tariff", ("tariff",), ("关税", "關稅")),
    ("sanction", ("sanction", "sanctions"), ("制裁",)),
    ("visit", ("visit", "trip"), ("访问", "访华", "出访", "到访")),
    ("arrive", ("arrive", "arrives", "arrived", "land", "lands", "landed"), ("抵达", "到达")),
    ("open", ("open", "opens", "opened", "opening"), ("开幕", "开幕式", "揭幕")),
    ("forum", ("forum",), ("论坛", "論壇")),
    ("belt-road", ("belt",), ("一带一路",)),
    ("taiwan", ("taiwan",), ("台湾", "臺灣", "台灣")),
    ("south-china-sea", ("shoal",), ("南海", "仁爱礁")),
    ("philippines", ("philippine", "philippines", "manila"), ("菲律宾",)),
    ("fentanyl", ("fentanyl",), ("芬太尼",)),
    ("investment", ("investor", "investment", "invest"), ("投资", "外资", "外商")),
    ("economy", ("economic", "economy"), ("经济", "經濟")),
    ("fall", ("fell", "fall", "drop", "decline", "slip"), ("下降", "下跌", "下滑")),
    ("hotline", ("hotline",), ("热线",)),
    ("ukraine", ("ukraine",), ("乌克兰",)),
    ("russia", ("russia", "russian"), ("俄罗斯", "俄")),
)

_EN: dict[str, str] = {tok: concept for concept, en, _ in GLOSSARY for tok in en}
_ZH: dict[str, str] = {word: concept for concept, _, zh in GLOSSARY for word in zh}
#: a Chinese title that announces rather than reports
_ZH_FUTURE = ("将", "拟", "即将", "计划", "有望")

_jieba: list[Any] = []  # the one tokenizer, once built
_jieba_lock = threading.Lock()


def _segmenter() -> Any:
    """jieba, initialised once (thread-safe), quietly, with the glossary's words. It
    is loaded on first use only (about a second)."""
    if not _jieba:
        with _jieba_lock:
            if not _jieba:
                import jieba

                jieba.setLogLevel(logging.CRITICAL)  # no "Building prefix dict..."
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in _ZH:
                    tokenizer.add_word(word)
                _jieba.append(tokenizer)
    return _jieba[0]


def zh_words(text: str) -> list[str]:
    """Chinese text segmented into words (jieba)."""
    if not CJK.search(text):
        return []
    return [w for w in _segmenter().lcut(text) if w.strip()]


def concepts_en(tokens: Iterable[str]) -> frozenset[str]:
    return frozenset(_EN[t] for t in tokens if t in _EN)


def concepts_zh(text: str) -> frozenset[str]:
    found = {_ZH[w] for w in zh_words(text) if w in _ZH}
    found.update(c for word, c in _ZH.items() if word.isascii() and word in text)
    return frozenset(found)


def zh_announces(title: str) -> bool:
    return any(marker in title for marker in _ZH_FUTURE)


def cross_language_match(
    *,
    zh_title_entries: frozenset[str],
    zh_entries: frozenset[str],
    zh_actors: frozenset[str],
    zh_concepts: frozenset[str],
    zh_future: bool,
    en_title_entries: frozenset[str],
    en_entries: frozenset[str],
    en_actors: frozenset[str],
    en_concepts: frozenset[str],
    en_future: bool,
) -> int:
    """How many concepts a Chinese and an English report of one event share, or 0
    when they are not one event (see the module docstring). ``*_actors``: the tracked
    actors matched in the title."""
    shared_title = zh_title_entries & en_title_entries
    if not shared_title:
        return 0
    if (zh_actors - en_entries) or (en_actors - zh_entries):
        return 0
    if zh_future != en_future:  # one announces, the other does not
        return 0
    shared = zh_concepts & en_concepts
    needed = 1 if len(shared_title) >= 2 else 2
    return len(shared) if len(shared) >= needed else 0


def item_language(mi: MatchedItem) -> str:
    """The item's language: its feed's (``"zh-CN"`` -> ``"zh"``), else ``"zh"`` for a
    title mostly in CJK script and ``"en"`` for any other."""
    lang = (mi.stored.item.lang or "").strip().lower()
    if lang:
        return lang.split("-")[0].split("_")[0]
    words = split_words(plain(mi.stored.item.title))
    cjk = sum(1 for w in words if w.cjk)
    return "zh" if cjk and cjk >= len(words) / 2 else "en"

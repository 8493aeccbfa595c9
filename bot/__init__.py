"""Briefbot: a news briefing bot for chat teams."""

__version__ = "0.1.0"

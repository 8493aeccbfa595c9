"""The use cases behind every chat command, one module per concern.

- :mod:`.channels`: a channel's record and its effective watchlist (cached);
- :mod:`.briefs`: ``/brief`` and ``/search``;
- :mod:`.digests`: building digests (brief, scheduled, on demand) and ``/digest ...``;
- :mod:`.tracking`: ``/track``, ``/untrack``, ``/watchlist``, ``/test``;
- :mod:`.feeds`: ``/feeds add|remove|list|import|export``;
- :mod:`.status`: ``/status``, ``/help`` and option autocomplete;
- :mod:`.alerts`: new items from the poller, matched per channel, instant alerts;
- :mod:`.dispatch`: the one map from a command name to its handler.

:class:`bot.core.service.BriefingService` composes them for the adapters.
"""

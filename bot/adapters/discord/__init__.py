"""The Discord adapter (discord.py 2.x): slash commands generated from the core's command
spec, digests and alerts as embeds, and the delivery sink. It only translates: every
decision is the core's.

- :mod:`.bot`: the ``AutoShardedClient`` and :func:`~.bot.start_discord`
- :mod:`.commands`: the command tree built from :mod:`bot.core.commands`, syncing
- :mod:`.interactions`: running a command within Discord's 3-second window
- :mod:`.errors`: the one error handler
- :mod:`.embeds`: digests as embeds within Discord's limits, reply text made inert
- :mod:`.sink`: exactly-once delivery for the Outbox
- :mod:`.cli`: ``briefbot discord sync`` and ``briefbot discord invite``
"""

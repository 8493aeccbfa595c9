"""The Slack adapter (Bolt for Python, slack_sdk): one ``/briefbot`` slash command whose
text is a command in the console's syntax, digests and alerts in Block Kit, and the
exactly-once delivery sink. It only translates: every decision is the core's.

- :mod:`.app`: the Bolt ``AsyncApp``, HTTP (aiohttp) or Socket Mode, :func:`~.app.start_slack`
- :mod:`.commands`: ``/briefbot`` parsing, the 3-second acknowledgement, the listeners
  for menus, modals and options
- :mod:`.views`: the modals and select menus (Block Kit) and reading their submissions
- :mod:`.respond`: answering after the acknowledgement; who may change a setup
- :mod:`.blocks`: Block Kit rendering within Slack's limits, feed text escaped
- :mod:`.sink`: exactly-once delivery (message metadata + history lookup)
- :mod:`.installation`: the installation store (OAuth, many workspaces), encrypted
- :mod:`.manifest`: ``briefbot slack manifest --url``
- :mod:`.errors`: Slack API errors -> pause reasons and user messages
"""

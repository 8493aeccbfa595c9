"""Operations: what ``briefbot run`` adds around the core for an operator.

- :mod:`bot.ops.logs`: logging set-up, the per-cycle event lines, ``--log-format json``;
- :mod:`bot.ops.monitor`: :class:`~bot.ops.monitor.Monitor`, the Telemetry behind the
  event lines, the Prometheus metrics and the health state;
- :mod:`bot.ops.server`: the HTTP endpoint serving ``/healthz`` and ``/metrics``;
- :mod:`bot.ops.retention`: the daily pruning of old rows;
- :mod:`bot.ops.checks`: ``check-config``'s checks of the data directory and database.

The core never imports this package: it reports through the
:class:`~bot.core.telemetry.Telemetry` port.
"""

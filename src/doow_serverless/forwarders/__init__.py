"""Forwarders: functions you deploy next to yours that deliver what the SDK's log lines hold,
fed by the platform's own log pipeline, so nothing waits for someone to run ``replay``.

- ``forwarders.aws``: a Lambda handler for a CloudWatch Logs subscription filter.
- ``forwarders.vercel``: a Log Drain endpoint (a WSGI ``app``).
- ``forwarders.azure``: an Event Hub-triggered function (a ``blueprint``) for the
  ``FunctionAppLogs`` a diagnostic setting streams.

Each reads the lines with ``read_log``, sends their events with their own ids through the
same engine as ``doow-serverless replay``, and fails its invocation (or answers 5xx) when
something is not delivered, so the platform's retries apply. They read lines written in
any mode of the SDK. Importing this package imports none of them.
"""

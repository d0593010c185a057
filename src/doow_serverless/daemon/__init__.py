"""``doow-serverless daemon``: a local relay that many processes send their events through.

It speaks Doow's ingest protocol on 127.0.0.1 (and optionally a Unix socket), so any Doow
SDK sends through it by setting its endpoint; it also takes NDJSON lines over TCP and
follows NDJSON files. A batch is acknowledged only once it is fsync'ed to the daemon's
spool; the daemon then forwards it with the library's delivery engine, event ids kept, so
the whole path counts each event once. See docs/daemon.md.

Modules, each with one job:

- ``_settings``: flags, the config file and the environment, at start and on SIGHUP;
- ``_pidfile``: the pidfile, held with a lock while the daemon lives;
- ``_intake``: check a batch as Doow would, write it durably, queue it;
- ``_queue``: what is held, on disk always and in memory up to the bound;
- ``_forward``: the thread that forwards with the delivery engine;
- ``_server``: listening sockets and a stop that answers what is in progress;
- ``_http``: the ingest protocol; ``_tcp_lines``: lines over TCP; ``_follow``: files;
- ``_lines``: one NDJSON line as an event document;
- ``_daemon``: start, signals, reload, stop.
"""

from __future__ import annotations

from ._daemon import EXIT_LOST, EXIT_NOT_STARTED, EXIT_OK, Daemon
from ._settings import Flags

__all__ = ["EXIT_LOST", "EXIT_NOT_STARTED", "EXIT_OK", "Daemon", "Flags"]

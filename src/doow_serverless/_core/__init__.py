"""Rules and formats, with no I/O and no threads: names and limits, errors, settings and the
environment, event validation, and the ingest wire format shared with the local collector."""

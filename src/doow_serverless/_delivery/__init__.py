"""Queue and network: the outbox of events and batches, the retry policy, one batch sent
within a deadline, and the HTTP edge (the only place that imports httpx)."""

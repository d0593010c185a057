"""The client: the delivery engine (sending with nothing lost), ``DoowTracker`` on top of
it, the background flusher of long-running processes, and ``replay``."""

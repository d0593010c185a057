"""What keeps events past the process: the disk spool, the log lines of the last resort,
and the carry-over that decides which of the two a batch goes to, and when."""

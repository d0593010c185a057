"""Fault campaigns: many invocations of a real function against a misbehaving collector.

The pieces are platform-neutral, so a campaign for another platform reuses them:

- :mod:`.faults`: the kinds of fault, and a seeded schedule that covers every kind;
- :mod:`.workload`: the usage events each invocation tracks, with ids known in advance;
- :mod:`.store`: what the collector stored, read from its SQLite file;
- :mod:`.accounting`: the ledger of what was tracked and how each invocation ended, and the
  balance (stored, rejected, duplicated, lost, deadlines missed, faults that took effect);
- :mod:`.evidence`: what was seen around each fault, and whether that shows it took effect;
- :mod:`.leaks`: searching logs and spool files for the API key;
- :mod:`.replay`: running ``doow-serverless replay``;
- :mod:`.report`: the Markdown report.

:mod:`.lambda_campaign` drives AWS Lambda (the real runtime client) with them; given another
:class:`~.lambda_campaign.Platform`, the same driver runs :mod:`.vercel_campaign` (Vercel's
runtime) and :mod:`.azure_campaign` (the Azure Functions worker).
"""

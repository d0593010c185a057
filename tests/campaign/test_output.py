"""The campaign reads every marker in its functions' output, however lines were merged."""

from __future__ import annotations

from scripts.campaign.accounting import Ledger
from scripts.campaign.output import OutputWatch


def test_two_documents_printed_on_one_line_are_both_read() -> None:
    ledger = Ledger()
    watch = OutputWatch(ledger)
    # print() writes a line and its newline apart: another thread's line can come between.
    watch.on_line('{"campaign_tracked": 21, "pid": 1}{"campaign_tracked": 22, "pid": 1}')
    watch.on_line(
        '{"campaign_rejected": {"status": 207, "event_ids": ["a", "b"]}}'
        '{"doow_unsent":{"v":1}}\t{"doow_unsent":{"v":1}}'
    )
    watch.on_line('{"campaign_tracked": 23, "pid"')  # cut short: not read, not fatal

    assert watch.wait_tracked([21, 22, 23], at_least=2, timeout=0) == {21, 22}
    assert watch.counts() == (0, 2)
    assert ledger.reported_rejected == {"a", "b"}

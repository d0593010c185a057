"""The AWS Lambda forwarder: a function of its own, subscribed to your function's log group.

Deploy it from this package, with no code of yours (``template.yaml`` shows the whole set:
the function, the subscription filter, the permission and the dead-letter queue)::

    Handler: doow_serverless.forwarders.aws.handler
    Environment: DOOW_TRACK_API_KEY, DOOW_TRACK_ENDPOINT (as for your function)

CloudWatch Logs invokes it asynchronously with the log events the subscription filter
(``?doow_unsent ?doow_sent``) matched: ``{"awslogs": {"data": base64(gzip(JSON))}}``. It
sends their events with their own ids within its own deadline
(``context.get_remaining_time_in_millis()``, less a reserve). When some are not delivered
(Doow unreachable, the key refused, no time left) the invocation **fails**: Lambda retries
an asynchronous invocation (twice by default), then hands the event to the function's
on-failure destination or dead-letter queue, which ``doow-serverless replay --log`` reads.
A ``CONTROL_MESSAGE`` (CloudWatch checking the destination) is answered at once. An event
that is not a subscription payload at all fails too, so it lands where someone sees it.
"""

from __future__ import annotations

from typing import Any

from .._durability.envelopes import EnvelopeError, open_event
from ._deliver import Forwarder, ForwardingIncomplete, incomplete

__all__ = ["ForwardingIncomplete", "NotASubscription", "handler"]

# One per execution environment: its connection serves the warm invocations.
_forwarder = Forwarder()


class NotASubscription(ValueError):
    """The function was invoked with something other than a CloudWatch Logs payload."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda's entry point: deliver one subscription payload, or raise to have it retried."""
    try:
        delivery = open_event(event)
    except EnvelopeError as exc:
        raise NotASubscription(f"doow-serverless forwarder: {exc}") from None
    if delivery.is_control:
        return {"messageType": delivery.message_type}
    time_left = context.get_remaining_time_in_millis() / 1000.0
    source = f"{delivery.log_group} {delivery.log_stream}".strip() or "subscription"
    outcome = _forwarder.forward(source, delivery.messages, time_left)
    if not outcome.complete:
        raise incomplete(outcome, "Lambda retries the delivery, then keeps it (DLQ)")
    return {"messageType": delivery.message_type, **outcome.as_dict()}

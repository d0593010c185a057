"""The Azure Functions forwarder: an Event Hub-triggered function for your function app's logs.

A diagnostic setting streams the app's ``FunctionAppLogs`` to an event hub; this function
reads them. Register its blueprint in a function app (its own, or yours)::

    # function_app.py
    import azure.functions as func
    from doow_serverless.forwarders.azure import blueprint

    app = func.FunctionApp()
    app.register_functions(blueprint)

with the app settings ``DOOW_TRACK_API_KEY``, ``DOOW_TRACK_EVENT_HUB_NAME`` (the event hub)
and ``DOOW_TRACK_EVENT_HUB_CONNECTION`` (its connection string, or an identity-based
connection's settings under that prefix).

Each invocation gets a batch of events (``cardinality="many"``), each holding
``{"records": [...]}`` of log records whose ``properties.message`` is what a function
logged; the SDK's lines are read from all of them together, and their events sent with
their own ids within the function timeout. When some are not delivered, the function
**raises**. Without a retry policy the Functions host would checkpoint past the batch
anyway; this function carries one (exponential back-off from 10 s to 15 min, retrying
without end), and the host writes no checkpoint until the retries are over, so the batch
is retried until Doow takes it, while that partition waits (Microsoft's "Azure Functions
error handling and retries" page). If the instance dies meanwhile, another one takes the
batch from the last checkpoint.
"""

from __future__ import annotations

import time
from typing import List  # noqa: UP035 - the worker refuses list[...] for a trigger's type

import azure.functions as func

from .._core.constants import ENV_EVENT_HUB_CONNECTION, ENV_EVENT_HUB_NAME
from ..azure_functions._timeout import resolve_function_timeout
from ._deliver import Forwarder, Outcome, incomplete

__all__ = ["FUNCTION_NAME", "blueprint", "forward"]

FUNCTION_NAME = "doow_forwarder"
# Used when the app's function timeout is unbounded (Premium, Dedicated): one batch is
# given this long before it is failed and retried.
UNBOUNDED_BUDGET_S = 600.0

# One per worker process: its connection serves every batch the worker gets.
_forwarder = Forwarder()

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]


def forward(bodies: list[bytes], *, started: float | None = None) -> Outcome:
    """Send what the event bodies hold; raise ForwardingIncomplete when not all is delivered."""
    began = time.monotonic() if started is None else started
    timeout = resolve_function_timeout().seconds
    budget = UNBOUNDED_BUDGET_S if timeout is None else timeout
    lines = [line for body in bodies for line in body.decode("utf-8", "replace").splitlines()]
    outcome = _forwarder.forward("event hub", lines, budget - (time.monotonic() - began))
    if not outcome.complete:
        raise incomplete(outcome, "the Functions host retries the batch (retry policy)")
    return outcome


@blueprint.function_name(FUNCTION_NAME)
@blueprint.event_hub_message_trigger(
    arg_name="events",
    event_hub_name=f"%{ENV_EVENT_HUB_NAME}%",
    connection=ENV_EVENT_HUB_CONNECTION,
    cardinality="many",
)
@blueprint.retry(
    strategy="exponential_backoff",
    max_retry_count="-1",
    minimum_interval="00:00:10",
    maximum_interval="00:15:00",
)
def doow_forwarder(events: List[func.EventHubEvent]) -> None:  # noqa: UP006
    """The function the host triggers with a batch of events from the hub."""
    started = time.monotonic()
    forward([event.get_body() for event in events], started=started)

"""Cost per delivered message from Meta's delivery estimate (optional; needs an access token).

`graph_estimator(client)` returns the `Estimator` that `build_plan` accepts: for an ad
account and page it asks `GET act_<ID>/message_delivery_estimate` (Meta documents its
`estimate_delivery_*_bound` as counts of send calls and `estimate_cost_*_bound` in the ad
account currency's minor unit) and answers
ceil(estimate_cost_upper_bound / estimate_delivery_upper_bound) in minor units, the
pessimistic reading; None when Meta gives no usable figure (the spec's cost is used then).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


def cost_from_estimate(row: dict) -> int | None:
    """Minor units per delivered message from one estimate row, rounded up; None if unusable."""
    try:
        cost = int(float(row.get("estimate_cost_upper_bound")))
        delivered = int(float(row.get("estimate_delivery_upper_bound")))
    except (TypeError, ValueError):
        return None
    if delivered <= 0 or cost < 0:
        return None
    return -(-cost // delivered)


def graph_estimator(client) -> Callable[[str, str], int | None]:
    from migrator.graph import GraphError, NetworkError

    def estimate(ad_account_id: str, page_id: str) -> int | None:
        try:
            return cost_from_estimate(client.delivery_estimate(ad_account_id, page_id=page_id))
        except (GraphError, NetworkError):
            return None

    return estimate


@contextmanager
def env_graph_estimator(base_url: str,
                        notify: Callable[[str], None]) -> Iterator[Callable[[str, str], int | None] | None]:
    """`graph_estimator` on a client for `base_url` with MIGRATOR_ACCESS_TOKEN; None (after saying
    so through `notify`) when the token is not set. The client is closed afterwards."""
    from migrator.errors import MigratorError
    from migrator.graph import GraphClient, load_access_token

    try:
        token = load_access_token(kind="access")
    except MigratorError:
        notify("cost.source = estimate, but MIGRATOR_ACCESS_TOKEN is not set: using the spec's costs")
        yield None
        return
    client = GraphClient(token, base_url=base_url)
    try:
        yield graph_estimator(client)
    finally:
        client.close()

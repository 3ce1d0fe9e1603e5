"""cost.source = "estimate": the delivery-estimate endpoint prices messages (emulator, in-process)."""

from __future__ import annotations

from _emu import ACT, PAGE, client_for, make
from _plan import BASE_SPEC, AS_OF, estate, spec_file, tok

from migrator.plan import make_plan
from migrator.plan.estimate import cost_from_estimate, graph_estimator


def test_cost_from_estimate_rounds_up_and_rejects_nonsense():
    assert cost_from_estimate({"estimate_cost_upper_bound": 10, "estimate_delivery_upper_bound": 3}) == 4
    assert cost_from_estimate({"estimate_cost_upper_bound": "9", "estimate_delivery_upper_bound": "3"}) == 3
    assert cost_from_estimate({"estimate_cost_upper_bound": 5, "estimate_delivery_upper_bound": 0}) is None
    assert cost_from_estimate({}) is None


def test_estimate_from_the_emulator_prices_the_plan(ws, tmp_path):
    app, emu, clock = make(cost_per_message=7)
    with client_for(app) as g:
        est = graph_estimator(g)
        assert est(ACT, PAGE) == 7
        estate(ws, tmp_path, [tok(i, page=PAGE) for i in range(3)],
               pages=[[PAGE, "Emu Page", "US", ACT, "USD"]],
               content=[{"page_id": PAGE, "key": "d", "topic_title": "Deals", "message": {"text": "Hi"}}])
        base = BASE_SPEC.replace('id = "111"', f'id = "{ACT}"') + '\n[cost]\nsource = "estimate"\n'
        p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF, estimator=est)
    c = p.campaigns[0]
    assert (c.cost_per_message, c.cost_source, c.estimated_cost) == (7, "estimate", 21)


def test_without_an_estimate_the_spec_cost_is_used(ws, tmp_path):
    estate(ws, tmp_path, [tok(1)])
    base = BASE_SPEC + '\n[cost]\nsource = "estimate"\n'
    p = make_plan(ws, spec_file(tmp_path, base=base), as_of=AS_OF, estimator=lambda acct, page: None)
    assert (p.campaigns[0].cost_per_message, p.campaigns[0].cost_source) == (2, "spec")
    assert any("no delivery estimate" in w for w in p.warnings)

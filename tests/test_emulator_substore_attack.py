"""The subscriber store: a subscriber replaced after its object was handed out (as the dict did)."""

from __future__ import annotations

from migrator.emulator.subscribers import Subscriber, SubscriberStore


def test_a_subscriber_replaced_as_opted_out_is_opted_out_even_if_its_old_object_was_handed_out():
    st = SubscriberStore()
    st.add([Subscriber("a", "P1"), Subscriber("b", "P1")])
    st["a"].region = "US"                              # a test edits it: the object is now live
    st.add([Subscriber("a", "P1", opted_out=True)])    # POST /_emulator/subscribers: she opted out
    assert st.get("a").opted_out is True               # the send path must refuse her (2300034)
    assert [s.token for s in st.listing.get("P1")] == ["b"]
    st["b"].opted_out = True                           # and the other way round: opted out, then back
    st.add([Subscriber("b", "P1")])
    assert st.get("b").opted_out is False

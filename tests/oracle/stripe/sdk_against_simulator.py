"""Drive the official `stripe` Python SDK against `kosmo simulator:serve stripeish` (the QA
manifest tests/it/api_shapes/stripeish.yaml): the SDK's own form encoding, bearer key,
idempotency keys and auto-paging must work against the simulator built from YAML alone.

Usage: python sdk_against_simulator.py BASE_URL. Exits non-zero on the first mismatch.
"""
import sys

import stripe


def main(base):
    c = stripe.StripeClient("sk_test_simsim", base_addresses={"api": base}, max_network_retries=0)
    cu = c.v1.customers.create(params={
        "email": "a@example.com",
        "metadata": {"order_id": "6735"},
        "preferred_locales": ["en", "fr"],
        "address": {"city": "Paris"},
    })
    assert cu.id.startswith("cus_"), cu
    assert cu.metadata.to_dict() == {"order_id": "6735"}, cu.metadata
    assert cu.preferred_locales == ["en", "fr"], cu.preferred_locales
    got = c.v1.customers.retrieve(cu.id)
    assert got.email == "a@example.com", got
    upd = c.v1.customers.update(cu.id, params={
        "metadata": {"n": "1"},
        "invoice_settings": {"custom_fields": [{"name": "PO", "value": "7"}]},
        "expand": ["default_source"],
    })
    assert upd.metadata.to_dict().get("n") == "1", upd.metadata
    for i in range(3):
        c.v1.customers.create(params={"email": f"u{i}@example.com"})
    page = c.v1.customers.list(params={"limit": 2, "created": {"gte": 1}})
    assert len(page.data) == 2 and page.has_more, page
    ids = [x.id for x in page.auto_paging_iter()]
    assert len(ids) == 4 and len(set(ids)) == 4, ids
    session = c.v1.checkout.sessions.create(params={
        "mode": "payment",
        "line_items": [{"price": "p", "quantity": 2}],
    })
    assert session.object == "checkout.session", session
    try:
        c.v1.customers.retrieve("cus_nope")
        raise AssertionError("an unknown id must fail")
    except stripe.InvalidRequestError as e:
        assert e.http_status == 404, e
    deleted = c.v1.customers.delete(cu.id)
    assert deleted.deleted is True, deleted
    try:
        stripe.StripeClient("pk_live_wrong", base_addresses={"api": base},
                            max_network_retries=0).v1.customers.list()
        raise AssertionError("a key without the prefix must fail")
    except stripe.AuthenticationError as e:
        assert e.http_status == 401, e
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])

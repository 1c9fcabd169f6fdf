"""Capture what the official `stripe` Python SDK puts on the wire for a few calls.

Prints one JSON list: [{name, method, path, query, headers, body}] (headers lower-cased,
only the ones the QA test compares). Run with a python that has `stripe` installed.
"""
import json
import pathlib
import sys

# The one capture harness the Python oracles share, recording raw.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from capture import CaptureServer  # noqa: E402

import stripe  # noqa: E402

KEEP = ("authorization", "content-type", "idempotency-key", "stripe-version")


def respond(method, path, body, base):
    if path.startswith("/v1/customers") and method == "GET" and path.count("/") == 2:
        out = {"object": "list", "url": "/v1/customers", "has_more": False, "data": []}
    else:
        out = {"id": "cus_1", "object": "customer"}
    return json.dumps(out).encode(), "application/json"


def main():
    srv = CaptureServer(None, respond, "request-id", raw=True)
    client = stripe.StripeClient(
        "sk_test_oracle123",
        base_addresses={"api": srv.base_url},
        max_network_retries=0,
    )
    names = []
    client.v1.customers.create(params={
        "email": "a@example.com",
        "name": "Ann Lee",
        "metadata": {"order_id": "6735", "tier": "gold"},
        "preferred_locales": ["en", "fr"],
        "address": {"city": "Paris", "line1": "1 Rue X"},
    }, options={"idempotency_key": "idem-1"})
    names.append("create_customer")
    client.v1.invoice_items.create(params={
        "customer": "cus_1",
        "amount": 1200,
        "currency": "eur",
        "metadata": {"k": "v"},
    })
    names.append("create_invoice_item")
    client.v1.checkout.sessions.create(params={
        "mode": "payment",
        "success_url": "https://example.com/ok?x=1",
        "line_items": [
            {"price": "price_A", "quantity": 2},
            {"price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "Tee"}}, "quantity": 1},
        ],
        "metadata": {"cart": "c 1"},
    })
    names.append("create_checkout_session")
    client.v1.customers.list(params={"limit": 3, "starting_after": "cus_3", "email": "a@example.com"})
    names.append("list_customers")
    client.v1.customers.retrieve("cus_9")
    names.append("get_customer")
    client.v1.customers.update("cus_9", params={
        "metadata": {"old": "", "n": "1"},
        "tax_exempt": "none",
        "invoice_settings": {"custom_fields": [{"name": "PO", "value": "7"}], "footer": "Danke schön"},
        "expand": ["default_source", "invoice_settings.default_payment_method"],
        "balance": -500,
    })
    names.append("update_customer")
    client.v1.customers.list(params={"created": {"gte": 1700000000, "lt": 1800000000}, "expand": ["data.default_source"]})
    names.append("list_customers_filtered")
    client.v1.customers.delete("cus_9")
    names.append("delete_customer")
    client.v1.subscriptions.update("sub_1", params={"cancel_at_period_end": True, "proration_behavior": "none"})
    names.append("update_subscription")
    captured = [
        {
            "method": r["method"],
            "path": r["path"],
            "query": r["raw_query"],
            "headers": {k: v for k, v in r["headers"].items() if k in KEEP},
            "body": r["body"].decode(),
        }
        for r in srv.take()
    ]
    for name, req in zip(names, captured):
        req["name"] = name
    json.dump(captured, sys.stdout, indent=1)
    srv.shutdown()


if __name__ == "__main__":
    main()

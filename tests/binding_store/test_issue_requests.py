"""An issue request carries the audit detail and the ``binding.created`` event exactly as the
ORM path writes them (``audit.encode_detail``, ``outbox.rows``), X left for the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from binding_store import audit, outbox
from binding_store.issue_requests import IssueInput
from routing.binding_views import BindingView
from routing.events import binding_created
from routing.model import BindingState

NOW = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("order", "buyer_id", "masked"), [
    ("o-1", "u1", "139****0001"), ("订单 17 \"q\"", "", "***0001"), ("o\\2", "ü", "****")])
def test_the_request_holds_what_the_orm_path_writes(order: str, buyer_id: str,
                                                    masked: str) -> None:
    given = IssueInput(shop_id="s1", order_id=order, buyer_id=buyer_id,
                       caller_a="+8613800000001", buyer_cipher=b"\x00\x01",
                       buyer_bidx="bidx", buyer_masked=masked, now=NOW,
                       validity=timedelta(hours=24), preferred_region="BJ", actor="a" * 100)
    req = given.request(with_event=True)
    expires = NOW + timedelta(hours=24)
    assert req["audit"] == json.loads(audit.encode_detail({
        "order": order, "caller_a": "+8613800000001", "virtual_x": "", "buyer": masked,
        "expires_at": expires}))
    view = BindingView(binding_id=req["id"], shop_id="s1", order_id=order,
                       buyer_id=buyer_id, caller_a="+8613800000001", virtual_x="",
                       buyer_masked=masked, created_at=NOW, expires_at=expires,
                       released_at=None, state=BindingState.ACTIVE, created=True)
    row = outbox.rows([binding_created(view)], NOW)[0]
    event = req["event"]
    assert event["event_id"].startswith("evt_") and event["event_id"] != row["event_id"]
    assert (event["type"], event["stream"]) == (row["type"], row["stream"])
    assert event["payload"] == json.loads(row["payload"])
    assert json.loads(json.dumps(req)) == req  # JSON values only
    assert "event" not in given.request(with_event=False)

"""A live account's reconciliation on the status page: no card on paper, the reconciled card, and
a refusal saying what differs (escaped: the page is HTML) with how to accept a deposit."""

from __future__ import annotations

import re

import pytest

from sorte.config import Settings
from tests.account_state import DEPOSIT, reconciled
from tests.web.web_env import client, with_web


@pytest.fixture()
def web(settings: Settings) -> Settings:
    return with_web(settings)


def test_the_account_card(web: Settings) -> None:
    c = client(web)
    assert 'id="account-state"' not in c.get("/").text  # paper: no card
    reconciled(web.data_dir, True)
    page = c.get("/").text
    assert 'id="account-state" class="state trading">reconciled' in page
    assert re.search(r"reconciled at epoch 3 3\d s ago: 2 open orders, as the ledger says", page)
    assert "reconcile --accept" not in page
    reconciled(web.data_dir, False, (DEPOSIT,), ("open order <b>x</b> at the exchange is not in the ledger",))
    page = c.get("/").text
    assert 'id="account-state" class="state stopped">trading refused' in page
    assert "open order &lt;b&gt;x&lt;/b&gt; at the exchange" in page and "USDT balance is 11000" in page
    assert "<code>sorte reconcile --accept</code>" in page
    account = c.get("/api/v1/overview").json()["account"]
    assert account["balances"] == [{"asset": "USDT", "exchange": 11000.0, "ledger": 10000.0}]

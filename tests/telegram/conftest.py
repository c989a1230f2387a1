from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_telegram_api import FakeTelegram


@pytest.fixture()
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()

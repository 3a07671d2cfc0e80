"""Contract-test fixtures: one real sandbox on a free port, reset before every test."""
from __future__ import annotations

import pytest
import requests

from channel_helpers import DOWNLOAD_DELAY, ISSUE_DELAY, Admin, new_taxpayer_id
from portal.channels import ChannelConfig, ChannelKind, make_client
from portal.sandbox.testing import running_sandbox


@pytest.fixture(scope="session")
def sandbox_url():
    with running_sandbox(ISSUE_DELAY=ISSUE_DELAY, DOWNLOAD_DELAY=DOWNLOAD_DELAY, PER_DAY=3) as url:
        yield url


@pytest.fixture(autouse=True)
def _clean_sandbox(sandbox_url):
    requests.post(f"{sandbox_url}/_admin/reset", json={}, timeout=5)


@pytest.fixture
def admin(sandbox_url) -> Admin:
    return Admin(sandbox_url)


@pytest.fixture
def seller(admin) -> str:
    taxpayer_id = new_taxpayer_id()
    admin.taxpayer(taxpayer_id=taxpayer_id, name="沙箱测试销售有限公司")
    return taxpayer_id


@pytest.fixture
def client_for(sandbox_url):
    def make(kind: str, taxpayer_id: str, **overrides):
        config = ChannelConfig(kind=ChannelKind(kind), base_url=overrides.pop("base_url", sandbox_url),
                               taxpayer_id=taxpayer_id, connect_timeout=1.0,
                               read_timeout=overrides.pop("read_timeout", 3.0), **overrides)
        return make_client(config)
    return make

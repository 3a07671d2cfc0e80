"""The permission matrix: role × organisation × action → allowed or refused."""
import itertools

import pytest
from flask_login import login_user
from sqlalchemy import select

from portal.admin import service
from portal.auth import permissions
from portal.extensions import db
from portal.models import Grant, Organization, SystemParameter, User

ACTIONS = permissions.ALL_PERMISSIONS


def _user(username):
    return db.session.scalar(select(User).where(User.username == username))


def _org(code):
    return db.session.scalar(select(Organization).where(Organization.code == code))


@pytest.mark.parametrize("username,org_code,action,expected", [
    # admin: everything everywhere
    *[("admin", o, a, True) for o, a in itertools.product(["ORG01", "ORG03", "ORG06"], ACTIONS)],
    # supervisor: granted everything on every demo organisation
    *[("zhuguan", o, a, True) for o, a in itertools.product(["ORG01", "ORG04"], ACTIONS)],
    # clerk 1: ORG01/ORG02 only, and not 作废任务 / 删除 / 退回 there
    ("kaipiao1", "ORG01", "F18012.retry", True),
    ("kaipiao1", "ORG02", "F18012.export", True),
    ("kaipiao1", "ORG01", "F18012.void", False),
    ("kaipiao1", "ORG01", "F17008.delete", False),
    ("kaipiao1", "ORG01", "F17008.return", False),
    ("kaipiao1", "ORG03", "F18012.query", False),
    ("kaipiao1", "ORG04", "F18012.retry", False),
    # clerk 2: ORG03–ORG05, read-mostly
    ("kaipiao2", "ORG03", "F18012.query", True),
    ("kaipiao2", "ORG05", "F18012.fetch_result", True),
    ("kaipiao2", "ORG03", "F18012.retry", False),
    ("kaipiao2", "ORG01", "F18012.query", False),
    ("kaipiao2", "ORG04", "F17008.issue", False),
])
def test_permission_matrix(demo, username, org_code, action, expected):
    with demo.test_request_context():
        login_user(_user(username))
        assert permissions.can(action, _org(org_code).id) is expected


def test_grant_on_one_org_does_not_leak_to_another(demo):
    with demo.test_request_context():
        user = _user("kaipiao2")
        login_user(user)
        allowed = permissions.org_ids_with("F18012.query")
        assert allowed == {_org("ORG03").id, _org("ORG04").id, _org("ORG05").id}


def test_partition_reports_each_refused_row_with_its_organisation(demo):
    class Row:
        def __init__(self, org_id):
            self.org_id = org_id
    with demo.test_request_context():
        login_user(_user("kaipiao1"))
        rows = [Row(_org("ORG01").id), Row(_org("ORG03").id)]
        allowed, refused = permissions.partition("F18012.retry", rows)
        assert allowed == [rows[0]]
        assert refused[0].reason == "无「手工重试」权限（核算组织不存在或无权限）"  # ORG03 is not kaipiao1's to see


def test_unauthorised_button_is_shown_when_hide_parameter_is_off(demo):
    with demo.test_request_context():
        login_user(_user("kaipiao2"))
        assert SystemParameter.flag("hide_unauthorized_buttons") is False
        assert permissions.button_visible("F18012.void") is True


def test_unauthorised_button_is_hidden_when_hide_parameter_is_on(demo):
    service.set_parameter("hide_unauthorized_buttons", "1")
    with demo.test_request_context():
        login_user(_user("kaipiao2"))
        assert permissions.button_visible("F18012.void") is False
        assert permissions.button_visible("F18012.query") is True


def test_admin_pages_are_refused_to_non_admins(demo, auth, client):
    auth.login("zhuguan")
    for path in ["/admin/orgs", "/admin/users", "/admin/params", "/admin/audit"]:
        r = client.get(path)
        assert r.status_code == 403, path
        assert "仅管理员" in r.get_data(as_text=True)


def test_admin_saves_grants_and_they_take_effect_and_are_audited(demo, auth, client):
    auth.login("admin")
    clerk, org = _user("kaipiao2"), _org("ORG01")
    r = auth.post(f"/admin/users/{clerk.id}/grants", {"grant": [f"{org.id}|F18012.query", f"{org.id}|bogus.x"]},
                  page=f"/admin/users/{clerk.id}/grants")
    assert r.status_code == 302
    grants = db.session.scalars(select(Grant).where(Grant.user_id == clerk.id)).all()
    assert [(g.org_id, g.permission) for g in grants] == [(org.id, "F18012.query")]
    from portal.models import AuditLog
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "grants")).object_id == str(clerk.id)


def test_admin_creates_organisation_with_valid_tax_id(demo, auth, client):
    auth.login("admin")
    r = auth.post("/admin/orgs/new", {"code": "ORG09", "name": "新组织", "tax_id": "91110000600037341L",
                                      "taxpayer_type": "small", "channel": "leqi",
                                      "channel_connect_timeout": "3", "channel_read_timeout": "15",
                                      "invoice_service": "y", "active": "y"}, page="/admin/orgs/new")
    assert r.status_code == 302
    org = _org("ORG09")
    assert org.taxpayer_type == "small" and org.channel == "leqi" and org.invoice_service


def test_organisation_with_bad_tax_id_is_refused_and_nothing_saved(demo, auth, client):
    auth.login("admin")
    r = auth.post("/admin/orgs/new", {"code": "ORG10", "name": "错税号", "tax_id": "91110000600037341K",
                                      "taxpayer_type": "general", "channel": "rpa",
                                      "channel_connect_timeout": "3", "channel_read_timeout": "15"},
                  page="/admin/orgs/new")
    assert r.status_code == 200
    assert "第18位应为“L”" in r.get_data(as_text=True)
    assert _org("ORG10") is None


def test_early_code_is_accepted_with_override(demo, auth, client):
    auth.login("admin")
    data = {"code": "ORG11", "name": "早期", "tax_id": "91350100M0001TGQXM", "taxpayer_type": "general",
            "channel": "rpa", "channel_connect_timeout": "3", "channel_read_timeout": "15"}
    assert auth.post("/admin/orgs/new", data, page="/admin/orgs/new").status_code == 200
    data["tax_id_override"] = "y"
    assert auth.post("/admin/orgs/new", data, page="/admin/orgs/new").status_code == 302
    assert _org("ORG11").tax_id_override is True


def test_channel_secret_is_never_rendered_back(demo, auth, client):
    org = _org("ORG01")
    org.channel_app_secret = "s3cr3t-value"
    db.session.commit()
    auth.login("admin")
    assert "s3cr3t-value" not in client.get(f"/admin/orgs/{org.id}").get_data(as_text=True)


def test_admin_creates_user_with_hashed_password(demo, auth, client):
    auth.login("admin")
    r = auth.post("/admin/users/new", {"username": "newclerk", "name": "新人", "role": "clerk",
                                       "password": "longpassword", "active": "y"}, page="/admin/users/new")
    assert r.status_code == 302
    user = _user("newclerk")
    assert user.password_hash != "longpassword" and user.check_password("longpassword")

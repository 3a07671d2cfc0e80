"""XSS through every user-controlled field rendered anywhere (issue 8): hostile text goes in
through the product's own forms and the bureau sandbox, then every declared GET route is
crawled as admin and as the clerk who owns the rows."""
from __future__ import annotations

from html.parser import HTMLParser

from sqlalchemy import select

from portal.extensions import db
from portal.models import JobRun, Organization, User
from portal.models.sync import SchedulePlan
from tests.conftest import csrf_from
from tests.security.conftest import login_client
from tests.security.test_sec_access import GETS
from tests.sync_helpers import create_via_form, org, run_worker, tasks
from tests.test_exports_safety import _form_fields
from tests.test_imports import ROW, bureau_file, upload

IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
SSTI = "q{{7*7}}q"        # would render q49q if it ever reached a template as source
FMT = "p%(x)sp"           # would raise (500) or vanish if it reached % formatting / gettext
HTMX = '</option></select><img hx-post="/admin/params" hx-trigger="load">'
FULL = IMG + SVG + SSTI + FMT + HTMX
RAW = [IMG, "<svg onload", '<img hx-post="/admin/params"']


class Elements(HTMLParser):
    """Tags and attributes as a browser would build them."""

    def __init__(self):
        super().__init__()
        self.hostile = []

    def handle_starttag(self, tag, attrs):
        names = {k for k, _ in attrs}
        if names & {"onerror", "onload"} or (tag in ("img", "svg") and ("src", "x") in attrs) \
                or (tag == "img" and "hx-post" in names):
            self.hostile.append((tag, attrs))


def _edit(client, path, **changes):
    page = client.get(path).get_data(as_text=True)
    data = _form_fields(page)
    data.update(changes, csrf_token=csrf_from(page))
    r = client.post(path, data=data)
    assert r.status_code in (200, 302), (path, r.status_code)
    return r


def _plant(world, sandbox):
    """Hostile text in every field a user or the bureau controls, through the product."""
    admin = login_client(world.app, "admin").client
    o1, o2 = org("ORG01"), org("ORG02")
    _edit(admin, f"/admin/orgs/{o1.id}", name=FULL)
    _edit(admin, f"/admin/orgs/{o2.id}", code=SVG[:30])
    users = {u.username: u for u in db.session.scalars(select(User))}
    _edit(admin, f"/admin/users/{users['kaipiao1'].id}", name=HTMX + SSTI)
    _edit(admin, f"/admin/users/{users['kaipiao2'].id}", name=IMG + SVG + FMT)
    plan = db.session.scalar(select(SchedulePlan).order_by(SchedulePlan.id))
    _edit(admin, f"/admin/plans/{plan.id}", description=FULL)
    db.session.expire_all()
    assert org("ORG01").name == FULL and plan.description == FULL
    assert db.session.get(User, users["kaipiao1"].id).name == HTMX + SSTI

    k1 = login_client(world.app, "kaipiao1")
    o2 = db.session.get(Organization, o2.id)
    sandbox.fault(o2.tax_id, "fail", reason_code="download_apply_failed", message=FULL,
                  operation="apply_download", count=1)
    create_via_form(k1, o2.code)
    upload(k1, bureau_file([ROW]), name=IMG + HTMX[:60] + ".xlsx")
    k1.client.post("/table-columns/sync-table", data={"csrf_token": k1.token("/sync-logs/"),
                                                      "cols": [FULL, "error"], "next": FULL})
    run_worker()
    assert any(t.error == FULL for t in tasks())
    assert db.session.scalar(select(JobRun).where(JobRun.subject.contains(IMG))) is not None
    return admin, k1.client


def _crawl(world, client, who):
    pages = 0
    for rule in GETS:
        path = world.path(rule)
        for p in (path, f"{path}?q={FMT}"):
            r = client.get(p)
            assert r.status_code != 500, (who, p)
            if not r.mimetype.startswith("text/html"):
                continue
            html = r.get_data(as_text=True)
            pages += 1
            parser = Elements()
            parser.feed(html)
            assert parser.hostile == [], (who, p, parser.hostile)
            for raw in RAW:
                assert raw not in html, (who, p, raw)
            assert "q49q" not in html, (who, p)
    return pages


def test_hostile_text_in_every_field_is_shown_as_text_everywhere(world, sandbox):
    admin, clerk = _plant(world, sandbox)
    pages = _crawl(world, admin, "admin") + _crawl(world, clerk, "kaipiao1")
    shown = admin.get("/admin/orgs").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and SSTI in shown  # shown, as text
    bad = next(t for t in tasks() if t.error == FULL)
    detail = clerk.get(f"/sync-logs/{bad.id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail  # the bureau's text, escaped
    assert pages >= len(GETS)

"""The English UI: every page a user can reach, rendered in English, shows no Chinese
except data (organisation names, seller names, bureau messages stored by the jobs …)
and the name of the other language on the language switch.

The demo data is produced through the product (the demo seeding drives the service and
the sandbox, then a few actions through the HTTP forms); every page reachable by GET in
the URL map is visited with real ids, plus the pages users reach after actions.
"""
from __future__ import annotations

import html as html_lib
import re

import pytest
from markupsafe import escape
from sqlalchemy import JSON, String, Text, select

from portal.extensions import db
from portal.sync_logs.importing import COLUMNS
from tests.conftest import csrf_from
from tests.sync_helpers import PERIOD, org, run_worker

HAN = re.compile(r"[\u4e00-\u9fff]")
OTHER_LANGUAGE = "简体中文"  # the language switch names the other language in that language
FILE_COLUMNS = list(COLUMNS)  # the bureau file's headers, named on the 手工导入 page
# the manuals' English for the list's statuses, buttons, menu and login banner
MANUAL_TERMS = ["Data sync log", "Download batch no.", "Accounting organisation", "Sync status", "Downloading",
                "Download request failed", "Download failed", "Incomplete purchase/sales data",
                "Headers downloaded", "Data downloaded", "No data", "Succeeded", "Voided", "Fetch async result",
                "Retry manually", "Void tasks", "Export", "New download task", "Manual import",
                "Invoicing process monitor", "My background jobs"]
SKIP_ENDPOINTS = {"static", "favicon", "main.job_file", "sync_logs.import_template"}  # files


def _collect(value, out: set):
    if isinstance(value, str):
        if HAN.search(value):
            out.add(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect(k, out)
            _collect(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect(v, out)


def data_values() -> list[str]:
    """Every string stored in the database that contains Chinese, longest first."""
    found: set[str] = set()
    for table in db.metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
        if cols:
            for row in db.session.execute(select(*cols)):
                for value in row:
                    _collect(value, found)
    db.session.rollback()
    pieces = set(found)
    for value in found:  # lists join data with 、/，; single lines of multi-line values
        pieces.update(p for p in re.split(r"[\n、，]", value) if HAN.search(p))
    return sorted(pieces, key=len, reverse=True)


def untranslated(page: str, values: list[str]) -> list[str]:
    """Snippets of Chinese left once data values are taken out of the page."""
    text = page
    # a truncated data cell shows a prefix of the value its title carries in full
    text = re.sub(r'<span class="trunc" title="([^"]*)">([^<]*)…</span>',
                  lambda m: "" if html_lib.unescape(m.group(1)).startswith(html_lib.unescape(m.group(2)))
                  else m.group(0), text)
    for value in values:  # a whole run of Chinese only: a unit such as 台 must not eat 后台
        for form in {str(escape(value)), value}:
            text = re.sub(rf"(?<![\u4e00-\u9fff]){re.escape(form)}(?![\u4e00-\u9fff])", "▯", text)
    text = text.replace(OTHER_LANGUAGE, "")
    # 手工导入 names the columns of the bureau's file: its headers are Chinese in any language
    text = text.replace("、".join(FILE_COLUMNS), "▯")
    runs = re.finditer(r"[\u4e00-\u9fff][\u4e00-\u9fff\s，。、：（）]*", text)
    return list(dict.fromkeys(text[max(m.start() - 30, 0):m.end() + 30].replace("\n", " ").strip()
                              for m in runs))[:8]


class Crawl:
    def __init__(self, client):
        self.client = client
        self.pages: dict[str, str] = {}  # label → html

    def keep(self, label: str, response, expect=(200,)):
        body = response.get_data(as_text=True)
        assert response.status_code in expect, (label, response.status_code, body[:500])
        self.pages[label] = body
        return body

    def get(self, url, expect=(200,), label=None):
        return self.keep(label or url, self.client.get(url, follow_redirects=True), expect)

    def post(self, url, data, page, label=None, expect=(200,)):
        data = dict(data)
        data["csrf_token"] = csrf_from(self.client.get(page).get_data(as_text=True))
        return self.keep(label or f"POST {url}", self.client.post(url, data=data, follow_redirects=True), expect)

    def english(self, page="/"):
        """Switch the language the way a user does: the button on the page."""
        html = self.client.get(page).get_data(as_text=True)
        if 'action="/lang/zh"' in html:
            return  # already English: the language is kept across logging out and in
        assert 'action="/lang/en"' in html
        r = self.client.post("/lang/en", data={"csrf_token": csrf_from(html), "next": page})
        assert r.status_code == 302
        assert OTHER_LANGUAGE in self.client.get(page).get_data(as_text=True)


def _ids(app):
    from portal.models import JobRun, Organization, SchedulePlan, SyncTask, User
    import sys

    from portal.tables import Table

    # the product's tables (tests may register tables of their own in the same registry)
    product = {t.dom_id for name, module in list(sys.modules.items()) if name.startswith("portal.")
               for t in vars(module).values() if isinstance(t, Table)}
    assert {"sync-table", "batch-invoices", "jobs-table", "org-table"} <= product
    ids = lambda model: [str(i) for i in db.session.scalars(select(model.id).order_by(model.id))]  # noqa: E731
    tasks = ids(SyncTask)
    return {"task_id": tasks, "row_id": tasks, "job_id": ids(JobRun), "user_id": ids(User),
            "org_id": ids(Organization), "plan_id": ids(SchedulePlan), "table_id": sorted(product & set(Table.registry))}


def crawl_url_map(app, crawl: Crawl) -> int:
    """GET every GET route of the URL map, each path id filled with every real id."""
    values = _ids(app)
    n = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIP_ENDPOINTS:
            continue
        urls = [rule.rule]
        for arg in rule.arguments:
            assert arg in values, f"no ids known for <{arg}> in {rule.rule}: add them to the test"
            urls = [re.sub(rf"<(?:\w+:)?{arg}>", v, u) for u in urls for v in values[arg]]
        for url in urls:
            crawl.get(url, expect=(200, 403, 404))
            n += 1
    return n


@pytest.fixture
def site(portal_with_sandbox, sandbox):
    """The demo tasks of `flask seed`, in every resting 同步状态, made through the product."""
    from portal.demo import seed_download_tasks

    seed_download_tasks(sandbox.base, "sqlite://")  # the sandbox already answers there
    return portal_with_sandbox


def _task(status: str, org_code: str | None = None):
    from portal.models import SyncTask

    stmt = select(SyncTask).where(SyncTask.status == status)
    if org_code:
        stmt = stmt.where(SyncTask.org_id == org(org_code).id)
    return db.session.scalars(stmt.order_by(SyncTask.id)).first()


def assert_english(crawl: Crawl):
    values = data_values()
    bad = {label: snippets for label, html in crawl.pages.items() if (snippets := untranslated(html, values))}
    assert not bad, "Chinese outside data on English pages:\n" + "\n".join(
        f"{label}:\n    " + "\n    ".join(snippets) for label, snippets in bad.items())


def test_every_page_is_english_for_the_admin(site, client, sandbox):
    crawl = Crawl(client)
    # the login page in English, and its error
    crawl.english("/login")
    crawl.get("/login")
    assert "Please log in first" in crawl.get("/sync-logs/", label="login required")  # flashed on /login
    crawl.post("/login", {"username": "admin", "password": "wrong"}, "/login", "login error", expect=(401,))
    auth_login = client.post("/login", data={"username": "admin", "password": "demo1234",
                                             "csrf_token": csrf_from(client.get("/login").get_data(as_text=True))})
    assert auth_login.status_code == 302
    crawl.english("/")  # logging in starts a fresh session: the user picks English again

    # 电子税局登录失效: a manual fetch meets an expired login (banner on the list, a job page)
    waiting = _task("processing", "ORG02")
    sandbox.fault(org("ORG02").tax_id, "login_expired")
    crawl.post("/sync-logs/fetch-results", {"ids": [str(waiting.id)], "filters": ""}, "/sync-logs/",
               "获取异步结果 job")
    run_worker()
    banner = crawl.get("/sync-logs/", label="电子税局登录失效 banner")
    assert org("ORG02").channel_login_expired_at is not None
    assert "e-Tax Bureau login expired" in banner and ">Log in</button>" in banner
    crawl.post(f"/sync-logs/orgs/{org('ORG02').id}/login", {"filters": ""}, "/sync-logs/", "登录 org")

    # bulk buttons: results after a redirect, the void confirmation, refusals
    failed, success = _task("failed"), _task("success")
    crawl.post("/sync-logs/retry", {"ids": [str(failed.id), str(success.id)], "filters": ""}, "/sync-logs/",
               "手工重试 result")
    crawl.post("/sync-logs/retry", {"filters": ""}, "/sync-logs/", "手工重试 nothing selected")
    crawl.post("/sync-logs/void", {"ids": [str(_task("no_data").id), str(success.id)], "filters": ""},
               "/sync-logs/", "作废任务 confirm")
    crawl.post("/sync-logs/void", {"ids": [str(_task("voided").id)], "filters": ""},
               "/sync-logs/", "作废任务 confirm, nothing to void")
    crawl.post("/sync-logs/void", {"ids": [str(_task("no_data").id)], "filters": "", "confirmed": "1"},
               "/sync-logs/", "作废任务 result")
    crawl.post("/sync-logs/fetch-results", {"ids": [str(success.id)], "filters": ""}, "/sync-logs/",
               "获取异步结果 refused")
    crawl.post("/sync-logs/export", {"filters": ""}, "/sync-logs/", "导出 nothing selected")
    site.config["EXPORT_SYNC_LIMIT"] = 0  # every export runs as a job
    crawl.post("/sync-logs/export", {"select_all": "1", "filters": "status=success"}, "/sync-logs/",
               "导出 job")
    run_worker()

    # 新增下载任务: its form errors and its result
    crawl.post("/sync-logs/new", {"start": "x"}, "/sync-logs/new", "新增下载任务 errors")
    crawl.post("/sync-logs/new", {"org": [str(org("ORG03").id)], "download_type": ["in_full", "unselected_init"],
                                  "sync_type": "current_month", "start": PERIOD[0].isoformat(),
                                  "end": PERIOD[1].isoformat()}, "/sync-logs/new", "新增下载任务 result")
    run_worker()
    crawl.post("/sync-logs/import", {}, "/sync-logs/import", "手工导入 errors")

    # admin forms: errors and saved messages
    crawl.post("/admin/orgs/new", {"code": ""}, "/admin/orgs/new", "org form errors")
    crawl.post("/admin/users/new", {"username": ""}, "/admin/users/new", "user form errors")
    crawl.post("/admin/params", {}, "/admin/params", "params saved")
    crawl.post("/admin/plans/1", {"description": "x", "cron": "bad cron"}, "/admin/plans/1", "plan errors")
    crawl.post(f"/admin/users/{_user('kaipiao2')}/grants", {"grant": []}, f"/admin/users/{_user('kaipiao2')}/grants",
               "grants saved")

    n = crawl_url_map(site, crawl)
    crawl.get("/sync-logs/?status=success")
    crawl.get("/no-such-page", expect=(404,))
    assert n > 40
    assert_english(crawl)
    # Status words are also stored as data (audit reasons), so stripping data could hide an
    # untranslated label: the list must show the manuals' English words themselves.
    listing = crawl.pages["/sync-logs/"]
    for words in MANUAL_TERMS:
        assert words in listing, words
    badges = re.findall(r'<span class="status[^"]*">([^<]*)</span>', listing)
    assert badges and not [b for b in badges if HAN.search(b)], badges
    print(f"\n{len(crawl.pages)} pages checked in English ({n} URL-map URLs)")


def _user(username):
    from portal.models import User
    return db.session.scalar(select(User.id).where(User.username == username))


def test_every_page_is_english_for_a_clerk(site, client, auth, sandbox):
    crawl = Crawl(client)
    auth.login("kaipiao1")
    crawl.english("/")
    crawl.post("/sync-logs/new", {"org": [str(org("ORG01").id)], "download_type": ["in_full"],
                                  "sync_type": "current_month", "start": PERIOD[0].isoformat(),
                                  "end": PERIOD[1].isoformat()}, "/sync-logs/new", "新增下载任务 result")
    run_worker()
    crawl.post("/sync-logs/void", {"ids": [str(_task("processing", "ORG02").id)], "filters": ""},
               "/sync-logs/", "作废任务 without permission")
    crawl.get("/admin/orgs", expect=(403,))
    crawl.get("/no-such-page", expect=(404,))
    n = crawl_url_map(site, crawl)
    assert n > 40
    assert_english(crawl)
    print(f"\n{len(crawl.pages)} pages checked in English ({n} URL-map URLs)")


def test_data_is_escaped_and_never_translated(portal_with_sandbox, client, auth):
    """An organisation's name is data: shown as typed, escaped, on the list, its filter and
    a batch's page; never taken as a message id or a format string."""
    from portal.models import Organization
    from tests.sync_helpers import make_task

    name = "100%(x)s <b>x</b>"
    o = org("ORG01")
    o.name = name
    db.session.commit()
    task = make_task("ORG01", "success")
    auth.login("admin")
    escaped = "100%(x)s &lt;b&gt;x&lt;/b&gt;"
    for lang in ("zh", "en"):
        auth.post(f"/lang/{lang}", {"next": "/"})
        for url in ("/sync-logs/", f"/sync-logs/{task.id}", "/admin/orgs"):
            r = client.get(url)
            html = r.get_data(as_text=True)
            assert r.status_code == 200, (url, html[:300])
            assert "<b>x</b>" not in html, url
            assert escaped in html, url
        listing = client.get("/sync-logs/").get_data(as_text=True)
        assert f'<option value="{o.id}"' in listing and f">{escaped}</option>" in listing
    assert db.session.get(Organization, o.id).name == name


def test_catalogue_translates_every_message_in_the_code(tmp_path):
    """`make translations` extracts every msgid (same keywords as the Makefile); the English
    catalogue translates each one, none fuzzy, placeholders kept; the .mo is compiled from it."""
    import subprocess
    import sys
    from pathlib import Path

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text()
    keywords = re.findall(r"-k (\S+)", makefile)
    assert {"_", "_l", "lazy_gettext", "N_", "Column:2", "Filter:2", "Action:2"} <= set(keywords)
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "extract", "-F", "babel.cfg", "--ignore-dirs=.*",
                    *[a for k in keywords for a in ("-k", k)], "-o", str(pot), "."], cwd=root, check=True)
    extracted = {m.id for m in read_po(pot.open("rb")) if m.id}
    po = {m.id: m for m in read_po((root / "translations/en/LC_MESSAGES/messages.po").open("rb")) if m.id}
    assert extracted - set(po) == set(), "run `make translations` and translate the new msgids"
    assert [i for i, m in po.items() if not m.string] == []
    assert [i for i, m in po.items() if m.fuzzy] == []
    placeholder = re.compile(r"%\(\w+\)s")
    assert [i for i, m in po.items() if sorted(placeholder.findall(i)) != sorted(placeholder.findall(m.string))] == []
    assert [i for i, m in po.items() if HAN.search(m.string)] == []
    mo = {m.id: m.string for m in read_mo((root / "translations/en/LC_MESSAGES/messages.mo").open("rb")) if m.id}
    assert mo == {i: m.string for i, m in po.items()}, "compile the catalogue: make translations"

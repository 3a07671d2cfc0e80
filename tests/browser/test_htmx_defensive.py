"""htmx configured defensively (issue 8): markup that arrives through data never acts, and
htmx itself refuses what the config forbids even if such markup got into the page."""
from __future__ import annotations

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Organization
from portal.models.system import SystemParameter

PAYLOAD = '</option></select><img hx-post="/admin/params" hx-trigger="load">'


def _params():
    db.session.expire_all()
    return {p.key: p.value for p in db.session.scalars(select(SystemParameter))}


def test_an_hx_post_in_an_org_name_never_fires(page, login):
    db.session.execute(update(Organization).where(Organization.code == "ORG01").values(name="华东" + PAYLOAD))
    db.session.commit()
    before = _params()
    posts = []
    page.on("request", lambda req: posts.append(req.url) if req.method == "POST" else None)
    login(page)
    for path in ("/admin/orgs", "/sync-logs/", "/sync-logs/new", "/admin/users"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.locator("img[hx-post]").count() == 0, path
    page.goto("/admin/orgs")
    assert page.get_by_text("华东</option>", exact=False).count() >= 1  # shown, as text
    assert not [u for u in posts if "/admin/params" in u]
    assert _params() == before


def test_htmx_reads_the_defensive_config(page, login):
    login(page)
    page.goto("/sync-logs/")
    config = page.evaluate("({self: htmx.config.selfRequestsOnly, eval: htmx.config.allowEval, "
                           "scripts: htmx.config.allowScriptTags, cache: htmx.config.historyCacheSize})")
    assert config == {"self": True, "eval": False, "scripts": False, "cache": 0}


def test_htmx_refuses_eval_and_other_origins_even_for_injected_markup(page, login):
    """Defence in depth: the outcome, whichever layer stops it (the config above, htmx 2's
    own default selfRequestsOnly, or the CSP without 'unsafe-eval')."""
    login(page)
    page.goto("/sync-logs/")
    foreign = []
    page.on("request", lambda req: foreign.append(req.url) if "example.invalid" in req.url else None)
    page.evaluate("""() => {
        const a = document.createElement('button');
        a.id = 'evil-eval'; a.setAttribute('hx-on:click', 'window.__pwned = 1');
        const b = document.createElement('button');
        b.id = 'evil-origin'; b.setAttribute('hx-get', 'http://example.invalid/steal');
        document.body.append(a, b); htmx.process(a); htmx.process(b);
    }""")
    page.click("#evil-eval")
    page.click("#evil-origin")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert foreign == []

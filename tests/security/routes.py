"""Every endpoint of the portal and its access rule (issue 8).

The security suite is generated from this table and ``app.url_map``: a route added without
a line here fails ``test_every_route_is_declared``, so nobody has to remember to cover it.

access: PUBLIC (anyone), LOGIN (any logged-in user), ADMIN (admins only) or a module button
permission such as "F18012.query" (held on at least one organisation; rows are org-scoped).
ids: path variable -> the kind of row it names (for IDOR probes; see conftest ``world``).
refuse: how a logged-in user without the right is turned away: "403" (error page) or
"redirect" (back to the list with the no-permission message, the app's choice for buttons
that 隐藏无权按钮 may show).
"""
from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC, LOGIN, ADMIN = "public", "login", "admin"


@dataclass(frozen=True)
class Route:
    endpoint: str
    access: str
    methods: frozenset
    ids: dict = field(default_factory=dict)
    refuse: str = "403"
    upload: bool = False
    export: bool = False
    ok: int = 200  # what an allowed GET answers

    @property
    def changes_state(self) -> bool:
        return "POST" in self.methods


def _r(endpoint, access, methods="GET", **kw) -> Route:
    return Route(endpoint, access, frozenset(methods.split()), **kw)


ROUTES = [
    _r("main.index", LOGIN),
    _r("favicon", PUBLIC),
    _r("main.set_language", PUBLIC, "POST", ids={"code": "lang"}),
    _r("auth.login", PUBLIC, "GET POST"),
    _r("auth.logout", LOGIN, "POST"),
    _r("main.job_list", LOGIN),
    _r("main.job_status", LOGIN, ids={"job_id": "job"}),
    _r("main.job_file", LOGIN, ids={"job_id": "job"}),
    _r("main.job_retry", LOGIN, "POST", ids={"job_id": "job"}),
    _r("table_prefs.columns", LOGIN, "GET POST", ids={"table_id": "table"}),
    _r("admin.index", ADMIN, ok=302),  # to /admin/orgs
    _r("admin.audit_log", ADMIN),
    _r("admin.orgs", ADMIN),
    _r("admin.org_edit", ADMIN, "GET POST", ids={"org_id": "org"}),
    _r("admin.params", ADMIN, "GET POST"),
    _r("admin.plans", ADMIN),
    _r("admin.plan_edit", ADMIN, "GET POST", ids={"plan_id": "plan"}),
    _r("admin.users", ADMIN),
    _r("admin.user_edit", ADMIN, "GET POST", ids={"user_id": "user"}),
    _r("admin.user_grants", ADMIN, "GET POST", ids={"user_id": "user"}),
    _r("admin.user_sessions", ADMIN, ids={"user_id": "user"}),
    _r("admin.user_session_end", ADMIN, "POST", ids={"user_id": "user", "session_id": "session"}),
    _r("admin.user_sessions_end_all", ADMIN, "POST", ids={"user_id": "user"}),
    _r("sync_logs.index", "F18012.query"),
    _r("sync_logs.detail", "F18012.query", ids={"task_id": "task"}),
    _r("sync_logs.row", "F18012.query", ids={"row_id": "task"}),
    _r("sync_logs.login", "F18012.query", "POST", ids={"org_id": "org"}),
    _r("sync_logs.retry", "F18012.query", "POST"),
    _r("sync_logs.void", "F18012.query", "POST"),
    _r("sync_logs.fetch_results", "F18012.query", "POST"),
    _r("sync_logs.export_tasks", "F18012.query", "POST", export=True),
    _r("sync_logs.create", "F18012.create", "GET POST", refuse="redirect"),
    _r("sync_logs.manual_import", "F18012.create", "GET POST", refuse="redirect", upload=True),
    _r("sync_logs.import_template", "F18012.create"),
]

BY_ENDPOINT = {r.endpoint: r for r in ROUTES}
NOT_PROBED = {"static"}  # files on disk, served by Flask itself

"""Demo data (`flask seed`) and bulk rows for benchmarks (`flask seed --scale N`)."""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select, func, insert

from portal import clock
from portal.auth.permissions import ALL_PERMISSIONS
from portal.extensions import db
from portal.models import AuditLog, Grant, Organization, User

DEMO_PASSWORD = "demo1234"

ORGS = [
    # code, name, tax id, taxpayer type, channel, override
    ("ORG01", "华东科技有限公司", "91110000600037341L", "general", "rpa", False),
    ("ORG02", "深圳前海贸易有限公司", "9144030071526726XG", "general", "leqi", False),
    ("ORG03", "上海浦东小微商行", "91310115MA1K3BTP2B", "small", "rpa", False),
    ("ORG04", "天津建设工程集团", "121200004013590816", "general", "taxctrl", False),
    ("ORG05", "芜湖镜湖个体商户", "92340602MA2PBMEM24", "small", "leqi", False),
    ("ORG06", "福州早期登记企业", "91350100M0001TGQXM", "general", "taxctrl", True),
]

USERS = [
    # username, name, role, org codes, permissions (None = all)
    ("admin", "系统管理员", "admin", [], None),
    ("zhuguan", "王主管", "supervisor", [o[0] for o in ORGS], None),
    ("kaipiao1", "李开票", "clerk", ["ORG01", "ORG02"],
     ["F18012.query", "F18012.create", "F18012.fetch_result", "F18012.retry", "F18012.export",
      "F17008.query", "F17008.import", "F17008.issue", "F17008.edit", "F17008.export", "F17008.trace"]),
    ("kaipiao2", "张税务", "clerk", ["ORG03", "ORG04", "ORG05"],
     ["F18012.query", "F18012.fetch_result", "F18012.export", "F17008.query"]),
]


def seed_demo(sandbox_url: str) -> bool:
    """Create demo organisations and users; does nothing when users already exist."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return False
    orgs = {}
    for code, name, tax_id, ttype, channel, override in ORGS:
        org = Organization(code=code, name=name, tax_id=tax_id, taxpayer_type=ttype,
                           channel=channel, tax_id_override=override,
                           channel_base_url=sandbox_url, invoice_service=True)
        db.session.add(org)
        orgs[code] = org
    db.session.flush()
    for username, name, role, org_codes, perms in USERS:
        user = User(username=username, name=name, role=role)
        user.set_password(DEMO_PASSWORD)
        db.session.add(user)
        db.session.flush()
        for code in org_codes:
            for perm in perms or ALL_PERMISSIONS:
                db.session.add(Grant(user_id=user.id, org_id=orgs[code].id, permission=perm))
    db.session.commit()
    return True


def seed_audit_rows(n: int, chunk: int = 20000) -> None:
    """Bulk audit rows (benchmarks of the table component)."""
    rnd = random.Random(42)
    start = clock.now() - timedelta(days=365)
    actions = ["login", "create", "update", "retry", "void", "export", "issue"]
    actors = [f"user{i}" for i in range(50)] + ["job:watchdog", "job:plans"]
    done = 0
    while done < n:
        rows = []
        for i in range(min(chunk, n - done)):
            k = done + i
            rows.append(dict(at=start + timedelta(seconds=k * 31 % (365 * 86400)),
                             actor=rnd.choice(actors), object_type="sync_task", object_id=str(k),
                             org_id=rnd.randint(1, 6), action=rnd.choice(actions),
                             from_state="", to_state="", reason=""))
        db.session.execute(insert(AuditLog), rows)
        db.session.commit()
        done += len(rows)


def seed_sync_tasks(n: int, chunk: int = 20000) -> None:
    """Bulk download tasks over the demo organisations (benchmarks of F18012)."""
    from portal.channels.base import DownloadType
    from portal.models import SyncTask
    from portal.models.sync import SyncStatus, SyncType

    orgs = [(o.id, o.channel) for o in db.session.scalars(select(Organization))]
    if not orgs:
        raise RuntimeError("seed the demo organisations first")
    rnd = random.Random(7)
    statuses = [s.value for s in SyncStatus]
    weights = [3, 3, 4, 5, 3, 2, 10, 68, 2]  # mostly 成功, some of every state
    types, sync_types = [t.value for t in DownloadType], [t.value for t in SyncType]
    start = clock.now() - timedelta(days=730)
    stamp = clock.now().strftime("%Y%m%d")
    # Number on from the highest id: a second run the same day gets new batch numbers
    # (every earlier seeded number is at most its row's id).
    first = (db.session.scalar(select(func.max(SyncTask.id))) or 0) + 1
    done = 0
    while done < n:
        rows = []
        for i in range(min(chunk, n - done)):
            k = done + i
            org_id, channel = orgs[k % len(orgs)]
            created = start + timedelta(seconds=k * 61 % (730 * 86400))
            status = rnd.choices(statuses, weights)[0]
            day = created.date().replace(day=1)
            count = rnd.randint(0, 300)
            rows.append(dict(
                batch_no=f"BK{stamp}{first + k:010d}", org_id=org_id, status=status,
                download_type=rnd.choice(types), sync_type=rnd.choice(sync_types),
                start_date=day, end_date=created.date(), success_count=count if status == "success" else 0,
                invoice_count=count, error="税局繁忙，请稍后再试" if status in ("failed", "apply_failed") else "",
                channel=channel, channel_task_id="", retry_count=0, version=0, created_by="seed",
                created_at=created, updated_at=created, requested_at=created,
                processing_since=created if status == "processing" else None))
        db.session.execute(insert(SyncTask), rows)
        db.session.commit()
        done += len(rows)

"""Bulk actions, one module for every button that acts on many rows.

- **Selection**: ticked ids or "all matching" (the filter re-run on the server by the
  table component), bounded by a limit; a selection over the limit is refused whole.
- **Plan**: each row either *will change* or is *skipped with a reason* — no permission on
  the row's organisation, or the button's own rule (`refusal(row) -> reason | None`).
  The same plan answers the confirmation ("将作废 3 个，跳过 462 个：…") and the action,
  which re-checks every rule inside its own transaction anyway.
- **Results**: per-row outcomes (done / skipped with reason), never a silent partial success.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from flask import request
from portal.i18n import gettext as _

from portal.auth import permissions
from portal.extensions import db


@dataclass
class Plan:
    will_change: list = field(default_factory=list)
    skipped: list[tuple[object, str]] = field(default_factory=list)  # (row, reason)

    @property
    def skipped_by_reason(self) -> list[tuple[str, list]]:
        """Skipped rows grouped by reason, largest group first (for confirmations)."""
        groups: dict[str, list] = {}
        for row, reason in self.skipped:
            groups.setdefault(reason, []).append(row)
        return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def plan(permission: str, refusal: Callable[[object], str | None], rows: list, user=None) -> Plan:
    """Split `rows` into those the action will change and those it skips, with why."""
    allowed, refused = permissions.partition(permission, rows, user=user)
    result = Plan(skipped=[(r.row, r.reason) for r in refused])
    for row in allowed:
        reason = refusal(row)
        if reason:
            result.skipped.append((row, reason))
        else:
            result.will_change.append(row)
    return result


@dataclass
class Selection:
    rows: list
    refusal: str | None = None      # why nothing was selected (shown to the user)
    level: str = "warning"


def select(table, base, limit: int, too_many: str | None = None, empty: str | None = None,
           form=None) -> Selection:
    """The rows a button acts on, or why the request is refused whole."""
    form = form if form is not None else request.form
    rows, over = table.selection(db.session, base, form, limit)
    if over:
        return Selection([], too_many or _("单次最多处理 %(n)s 条，当前选择超过 %(n)s 条，未处理任何数据。"
                                            "请缩小筛选范围或分批操作。", n=limit), "error")
    if not rows:
        return Selection([], empty or _("请先选择要操作的数据"))
    return Selection(rows)

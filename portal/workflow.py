"""The workflow core: every status change of every aggregate goes through `transition`.

An aggregate declares its state machine as data next to its model (``MACHINE = StateMachine
(...)``) and carries ``id``, ``status`` and ``version`` columns. `transition` performs one
move as an UPDATE guarded by id, version *and* the allowed starting states, writes the
audit row in the same transaction, and says whether it won. A double click, two workers
or a job racing a person therefore never both act: the loser gets False and reads again.
Nothing else writes a status column.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import update

from portal import clock
from portal.extensions import db


class IllegalTransition(ValueError):
    """A move the state machine does not allow (a programming error, not a race)."""


@dataclass(frozen=True)
class StateMachine:
    """States and allowed moves of one aggregate; `object_type` names it in the audit trail."""
    object_type: str
    moves: dict[str, frozenset[str]]
    terminal: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, object_type: str, moves: dict[str, Iterable[str]]) -> "StateMachine":
        frozen = {state: frozenset(targets) for state, targets in moves.items()}
        return cls(object_type, frozen, frozenset(s for s, t in frozen.items() if not t))

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.moves)

    def sources(self, to: str) -> frozenset[str]:
        """Every state from which `to` may be reached."""
        return frozenset(s for s, targets in self.moves.items() if to in targets)

    def allows(self, source: str, to: str) -> bool:
        return to in self.moves.get(source, ())


def _value(state) -> str:
    return getattr(state, "value", state)


def transition(row, to, *, allowed_from: Iterable | None = None, reason: str = "",
               actor: str | None = None, **fields) -> bool:
    """Move `row` to `to` if it is still where the caller saw it; False when it lost the race.

    `allowed_from` narrows the machine's own sources for `to` (e.g. only failures may be
    retried); it can never widen them. The audit row joins the caller's transaction, so
    the caller commits both together (or rolls both back).
    """
    model = type(row)
    machine: StateMachine = model.MACHINE
    to = _value(to)
    sources = machine.sources(to)
    if allowed_from is not None:
        sources = sources & {_value(s) for s in allowed_from}
    if not sources:
        raise IllegalTransition(f"{machine.object_type}: nothing may move to {to}")
    if row.status not in sources:
        return False
    values = dict(status=to, version=model.version + 1, **fields)
    if hasattr(model, "updated_at"):
        values.setdefault("updated_at", clock.now())
    changed = db.session.execute(
        update(model)
        .where(model.id == row.id, model.version == row.version, model.status.in_(sources))
        .values(**values)
        .execution_options(synchronize_session=False)).rowcount
    if not changed:
        return False
    from portal import audit  # models import this module: audit (a model) comes late

    audit.record(machine.object_type, row.audit_key, "status", org_id=getattr(row, "org_id", None),
                 from_state=row.status, to_state=to, reason=reason, actor=actor)
    db.session.flush()
    db.session.refresh(row)
    return True


def touch(row, **fields) -> bool:
    """Change fields other than the status, with the same version guard (no audit row)."""
    model = type(row)
    values = dict(version=model.version + 1, **fields)
    if hasattr(model, "updated_at"):
        values.setdefault("updated_at", clock.now())
    changed = db.session.execute(
        update(model).where(model.id == row.id, model.version == row.version)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if changed:
        db.session.refresh(row)
    return bool(changed)

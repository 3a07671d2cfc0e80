"""list_counts — the journal of counter cells behind exact list counts (portal.list_counts)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

ALL_ORGS = 0  # the all-organisations rollup of day and month cells
NO_ORG = -1   # rows without an organisation
DAY, MONTH = "d", "m"  # the date cuboids
TOTAL = "t"   # (organisation, status) alone: what a list without a counted filter reads


@dataclass
class Counted:
    """The counted dimensions of one table (column names)."""
    table: str
    org: str | None = None
    status: str | None = None
    day: str | None = None                       # a DateTime or Date column
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code → ≤ 2 columns

    def __post_init__(self):
        for code, cols in self.groups.items():
            if code in (DAY, MONTH, TOTAL) or len(code) != 1 or not 1 <= len(cols) <= 2:
                raise ValueError(f"{self.table}: group {code!r} must be one letter (not d/m/t), 1–2 columns")
        registry[self.table] = self

    @property
    def columns(self) -> list[str]:
        cols = [self.org, self.status, self.day] + [c for cols in self.groups.values() for c in cols]
        return [c for c in dict.fromkeys(cols) if c]

    # --- the cells of one row, as SQL over a row reference (NEW, OLD, r) ---------------------
    def cells(self, ref: str, dialect: str) -> list[tuple[str, ...]]:
        org = f"COALESCE({ref}.{self.org}, {NO_ORG})" if self.org else str(NO_ORG)
        status = f"COALESCE({ref}.{self.status}, '')" if self.status else "''"
        out = [(f"'{TOTAL}'", org, "''", status, "''", "''")]
        for code, cols in self.groups.items():
            keys = [f"COALESCE({ref}.{c}, '')" for c in cols] + ["''"] * (2 - len(cols))
            out.append((f"'{code}'", org, "''", status, *keys))
        if self.day:
            for grain, width, pattern in ((DAY, 10, "YYYY-MM-DD"), (MONTH, 7, "YYYY-MM")):
                bucket = (f"to_char({ref}.{self.day}, '{pattern}')" if dialect == "postgresql"
                          else f"substr({ref}.{self.day}, 1, {width})")
                out.append((f"'{grain}'", org, bucket, status, "''", "''"))
                out.append((f"'{grain}'", str(ALL_ORGS), bucket, status, "''", "''"))
        return out


registry: dict[str, Counted] = {}  # table → its declaration


class ListCount(db.Model):
    """One +n/−n for one cell of one counted table; written by triggers, folded by
    `portal.list_counts.compact`. Never updated in place."""
    __tablename__ = "list_counts"
    __table_args__ = (
        Index("ix_list_counts_cell", "list", "cuboid", "org_id", "bucket", "k1", "k2", "status", "n"),
        Index("ix_list_counts_unfolded", "folded", sqlite_where=text("folded = 0"),
              postgresql_where=text("NOT folded")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    list: Mapped[str] = mapped_column(String(40))    # the counted table
    cuboid: Mapped[str] = mapped_column(String(1))   # a group code, or d / m (day / month)
    org_id: Mapped[int] = mapped_column(Integer)     # ALL_ORGS in the rollup, NO_ORG if none
    bucket: Mapped[str] = mapped_column(String(10), default="")  # YYYY-MM-DD / YYYY-MM / ''
    status: Mapped[str] = mapped_column(String(40), default="")
    k1: Mapped[str] = mapped_column(String(40), default="")
    k2: Mapped[str] = mapped_column(String(40), default="")
    n: Mapped[int] = mapped_column(BigInteger)
    folded: Mapped[bool] = mapped_column(Boolean, default=False)

"""The sandbox's process state: config, database engine, faults, download controls."""
from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from .faults import FaultBook
from .models import Base, Taxpayer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {
    "SANDBOX_DATABASE_URL": f"sqlite:///{REPO_ROOT / 'instance' / 'sandbox.db'}",
    "SANDBOX_ISSUE_DELAY": 1.0,          # seconds from accepted to issued
    "SANDBOX_DOWNLOAD_DELAY": 2.0,       # seconds a download task stays 'processing'
    "SANDBOX_PER_DAY": 3,                # generated invoices per day and direction
    "SANDBOX_DEFAULT_QUOTA": "10000000.00",
    "SANDBOX_DEFAULT_SINGLE_LIMIT": "100000.00",
    "SANDBOX_FAULTS": None,              # JSON list / JSON text / path to a JSON file
    "SANDBOX_ADMIN_TOKEN": "",
    "SANDBOX_SIGNATURE_MAX_SKEW": 300,   # seconds
}
DOWNLOAD_OUTCOMES = ("processing", "success", "no_data", "header_only", "incomplete",
                     "failed", "apply_failed")


def load_config(config: dict | None) -> dict:
    """Defaults, then SANDBOX_* environment variables, then the explicit dict."""
    merged = dict(DEFAULTS)
    for key in DEFAULTS:
        if key in os.environ:
            merged[key] = os.environ[key]
    for key, value in (config or {}).items():
        merged[key if key.startswith("SANDBOX_") else f"SANDBOX_{key}"] = value
    for key in ("SANDBOX_ISSUE_DELAY", "SANDBOX_DOWNLOAD_DELAY", "SANDBOX_SIGNATURE_MAX_SKEW"):
        merged[key] = float(merged[key])
    merged["SANDBOX_PER_DAY"] = int(merged["SANDBOX_PER_DAY"])
    return merged


def parse_fault_config(value) -> list[dict]:
    """SANDBOX_FAULTS as a list, JSON text, or a path to a JSON file."""
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    text = str(value).strip()
    if not text.startswith(("[", "{")):
        text = Path(text).read_text(encoding="utf-8")
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


class Sandbox:
    """Everything one sandbox app holds; one lock serialises database work."""

    def __init__(self, config: dict):
        self.config = config
        url = config["SANDBOX_DATABASE_URL"]
        kwargs = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not url.startswith("sqlite://:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url, **kwargs)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.lock = threading.RLock()
        self.faults = FaultBook()
        self.download_controls: dict[str, dict] = {}
        for spec in parse_fault_config(config.get("SANDBOX_FAULTS")):
            self.faults.add(spec)

    @contextmanager
    def session(self):
        """A locked unit of work, committed on success."""
        with self.lock, Session(self.engine, expire_on_commit=False) as s:
            yield s
            s.commit()

    def ensure_taxpayer(self, s: Session, taxpayer_id: str) -> Taxpayer:
        """Unknown taxpayers are created with defaults so a fresh demo just works."""
        tp = s.get(Taxpayer, taxpayer_id)
        if tp is None:
            tp = Taxpayer(taxpayer_id=taxpayer_id, name=f"测试企业{taxpayer_id[-4:]}",
                          taxpayer_type="general",
                          quota_total=str(self.config["SANDBOX_DEFAULT_QUOTA"]),
                          quota_used="0.00",
                          single_limit=str(self.config["SANDBOX_DEFAULT_SINGLE_LIMIT"]),
                          app_key="", app_secret="", account_configured=True)
            s.add(tp)
            s.flush()
        return tp

    def take_download_control(self, taxpayer_id: str) -> dict:
        """The control for a new task; a 'next' outcome is used up by this call."""
        with self.lock:
            ctl = self.download_controls.get(taxpayer_id) or {}
            taken = dict(ctl)
            if ctl.get("mode", "next") == "next":
                ctl.pop("outcome", None)
                ctl.pop("defective", None)
            return taken


def current_sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]

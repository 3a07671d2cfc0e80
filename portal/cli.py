"""Flask CLI: `flask seed`, `flask serve` (the whole portal on one machine), `flask dispatch`."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from portal import seed as seeding
from portal.extensions import db


def init_app(app):
    app.cli.add_command(seed_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(dispatch_command)


def sandbox_database_url(cfg) -> str:
    return os.environ.get("SANDBOX_DATABASE_URL", f"sqlite:///{os.path.join(cfg['INSTANCE_DIR'], 'sandbox.db')}")


@click.command("seed")
@click.option("--scale", type=int, default=0, help="Also generate N bulk rows for benchmarks.")
@click.option("--what", type=click.Choice(["audit", "tasks"]), default="tasks",
              help="Which table --scale fills.")
@with_appcontext
def seed_command(scale: int, what: str):
    """Demo organisations, users and download tasks (only into an empty database)."""
    from portal.demo import seed_download_tasks

    cfg = current_app.config
    if seeding.seed_demo(cfg["SANDBOX_URL"]):
        counts = seed_download_tasks(cfg["SANDBOX_URL"], sandbox_database_url(cfg))
        click.echo("demo data created; download tasks by status: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    else:
        click.echo("users exist: demo data left as it is")
    if scale:
        started = time.perf_counter()
        if what == "audit":
            seeding.seed_audit_rows(scale)
        else:
            seeding.seed_sync_tasks(scale)
        click.echo(f"{scale} {what} rows in {time.perf_counter() - started:.1f}s")
    from portal import maintenance
    click.echo(maintenance.run())  # planner statistics for the new rows, at once


@click.command("serve")
@click.option("--port", default=5000, show_default=True)
@click.option("--sandbox-port", default=5050, show_default=True)
@click.option("--web-workers", default=2, show_default=True)
@with_appcontext
def serve_command(port: int, sandbox_port: int, web_workers: int):
    """Run web + RQ worker (with scheduler) + plan dispatcher + sandbox until Ctrl-C.

    A child that crashes is restarted with backoff (portal.supervisor); only Ctrl-C or
    SIGTERM stops everything, and then the embedded Redis too.
    """
    from portal.config import ROOT
    from portal.redis_conn import get_redis
    from portal.supervisor import Supervisor

    cfg = current_app.config
    get_redis().ping()  # starts the embedded Redis when REDIS_URL is unset
    env = dict(os.environ, REDIS_URL=cfg["REDIS_URL"])
    env.setdefault("DATABASE_URL", cfg["SQLALCHEMY_DATABASE_URI"])
    py = sys.executable
    bindir = os.path.dirname(py)
    sandbox_db = sandbox_database_url(cfg)
    commands = {
        "sandbox": [py, "-m", "portal.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port),
                    "--db", sandbox_db],
        "worker": [os.path.join(bindir, "rq"), "worker", "--with-scheduler", "--url", cfg["REDIS_URL"],
                   cfg["RQ_QUEUE"] + "-user", cfg["RQ_QUEUE"] + "-bg"],  # jobs.worker_queue_names: user first
        "dispatcher": [os.path.join(bindir, "flask"), "--app", "app", "dispatch"],
        "web": [os.path.join(bindir, "gunicorn"), "-w", str(web_workers), "--threads", "4",
                "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "app:app"],
    }
    supervisor = Supervisor(commands, env=env, cwd=str(ROOT))
    click.echo("")
    click.echo(f"  发票云 Fapiao Portal: http://127.0.0.1:{port}/")
    click.echo(f"  税局沙箱 sandbox:     http://127.0.0.1:{sandbox_port}/")
    click.echo(f"  演示账号 demo logins (password {seeding.DEMO_PASSWORD}):")
    for username, name, role, orgs, _ in seeding.USERS:
        click.echo(f"    {username:10s} {name}（{role}）{' '.join(orgs)}")
    click.echo("  Ctrl-C stops everything; a crashed process is restarted.\n")
    try:
        supervisor.run()
    finally:
        db.session.remove()


@click.command("dispatch")
@click.option("--interval", default=60.0, show_default=True, help="Seconds between ticks.")
@with_appcontext
def dispatch_command(interval: float):
    """Enqueue due 调度计划 every minute; survives Redis/database outages, stops on SIGTERM/Ctrl-C."""
    from jobs.dispatcher import run_dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_dispatcher(interval=interval, stop=stop)

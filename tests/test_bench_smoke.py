"""`make bench` keeps working: the enumerated list bench runs end to end on tiny databases
(the figures themselves are bench/README.md's business, not a test's)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_list_bench_enumerates_seeds_measures_and_reports(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORTAL_INSTANCE")}
    env["BENCH_RESULTS"] = str(tmp_path)
    out = subprocess.run([sys.executable, "bench/lists.py", "--db", "sqlite", "--sizes", "200", "400",
                          "--reps", "1", "--warmup", "0", "--no-concurrent", "--explain", "1",
                          "--only", "sync-table|admin|tab=all sort=created_at"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "goal 1  HTTP@large" in out.stdout and "Worst 1 cases" in out.stdout
    result = json.loads(next(tmp_path.glob("lists-sqlite-*.json")).read_text())
    cases = {c["case"] for c in result["cases"]}
    assert cases == {"tab=all sort=created_at desc", "tab=all sort=created_at asc"}
    assert all(not any(c["errors"].values()) for c in result["cases"])  # every page answered 200

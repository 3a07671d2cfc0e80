"""F18012 数据同步日志查询 — one test per rule of the manual, against the real sandbox
(HTTP) with a real RQ worker."""
from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from portal import clock
from portal.extensions import db
from portal.channels import make_client
from portal.models import AuditLog, JobRun, OutboxMessage, PoolInvoice, SchedulePlan, SyncTask, SyncTaskInvoice
from portal.sync_logs import service
from tests.sync_helpers import PERIOD, create_via_form, later, make_task, org, reload, run_worker, tasks


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


_create, _tasks, _later = create_via_form, tasks, later  # the shared helpers, by their short names here


# --- creating tasks and storing results -------------------------------------------------------
def test_created_task_is_applied_at_the_channel_and_pooled_then_success(env, auth):
    auth.login("kaipiao1")
    r = _create(auth)
    assert r.status_code == 200 and "已创建，正在向税局申请下载" in r.get_data(as_text=True)
    task = _tasks()[0]
    assert task.status == "processing" and task.sync_type == "current_month"
    run_worker()
    task = reload(task)
    assert task.status == "success", task.error
    assert task.invoice_count > 0 and task.success_count == task.invoice_count
    assert db.session.scalar(select(func.count()).select_from(PoolInvoice)) == task.success_count
    trail = db.session.scalars(select(AuditLog.to_state).where(
        AuditLog.object_type == "sync_task", AuditLog.object_id == task.batch_no).order_by(AuditLog.id)).all()
    assert trail == ["processing", "downloaded", "success"]


def test_redownload_never_duplicates_pool_invoices(env, auth, monkeypatch):
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    first = db.session.scalar(select(func.count()).select_from(PoolInvoice))
    _later(monkeypatch, 181)
    _create(auth)
    run_worker()
    second = _tasks()[1]
    assert second.status == "success" and second.success_count == first
    assert db.session.scalar(select(func.count()).select_from(PoolInvoice)) == first
    outcomes = set(db.session.scalars(select(SyncTaskInvoice.outcome).where(SyncTaskInvoice.task_id == second.id)))
    assert outcomes == {"unchanged"}


def test_status_update_download_changes_pooled_invoice_status(env, auth, monkeypatch):
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    _later(monkeypatch, 181)
    _create(auth, types=("in_status",))
    run_worker()
    changed = db.session.scalars(select(AuditLog).where(AuditLog.object_type == "pool_invoice")).all()
    assert changed, "the sandbox's status update should change some pooled invoice"
    assert {(a.from_state, a.to_state) for a in changed} <= {("正常", "红冲"), ("正常", "部分红冲"), ("正常", "作废")}
    pooled = db.session.scalar(select(PoolInvoice).where(PoolInvoice.status != "正常"))
    assert pooled is not None


def test_invoices_failing_verification_are_counted_as_failed_and_the_pooled_task_is_success(env, auth, sandbox):
    """数据已下载 is not a resting state: once pooling is done the task is 成功, with the
    invoices that failed checks counted as 处理失败 (处理成功的份数 < 下载发票份数)."""
    sandbox.downloads(org("ORG01").tax_id, outcome="success", defective=2, mode="next")
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    task = _tasks()[0]
    assert task.status == "success"
    trail = db.session.scalars(select(AuditLog.to_state).where(
        AuditLog.object_type == "sync_task", AuditLog.object_id == task.batch_no).order_by(AuditLog.id)).all()
    assert trail == ["processing", "downloaded", "success"]
    assert task.success_count == task.invoice_count - 2
    assert task.error == "2 份发票处理失败（详见批次明细）"
    failed = db.session.scalars(select(SyncTaskInvoice).where(SyncTaskInvoice.outcome == "failed")).all()
    assert len(failed) == 2 and all(f.failure_reason for f in failed)


@pytest.mark.parametrize("outcome,status", [
    ("processing", "processing"), ("no_data", "no_data"), ("header_only", "header_only"),
    ("incomplete", "incomplete"), ("failed", "failed"), ("apply_failed", "apply_failed"),
])
def test_every_channel_outcome_reaches_its_sync_status(env, auth, sandbox, outcome, status):
    sandbox.downloads(org("ORG01").tax_id, outcome=outcome, mode="all")
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    task = _tasks()[0]
    assert task.status == status
    if status in ("failed", "apply_failed"):
        assert task.error
    if status == "header_only":
        assert task.success_count > 0
        assert not db.session.scalar(select(PoolInvoice).limit(1)).has_lines


def test_create_validates_the_period(env, auth):
    auth.login("kaipiao1")
    r = _create(auth, period=(PERIOD[1], PERIOD[0]))
    assert "下载开始时间不能晚于下载结束时间" in r.get_data(as_text=True)
    assert _tasks() == []


def test_small_scale_taxpayer_cannot_create_deduction_selection_task(env, auth):
    auth.login("zhuguan")
    r = _create(auth, org_code="ORG03", types=("unselected_init",))
    assert service.MSG_SMALL_SCALE in r.get_data(as_text=True)
    assert _tasks() == []


# --- 获取异步结果 ----------------------------------------------------------------------------------
def test_fetch_result_only_for_incomplete_or_processing(env, auth):
    done = make_task("ORG01", "success")
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/fetch-results", {"ids": [str(done.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "仅进销项数据不全、下载处理中的任务可获取异步结果（当前：成功）" in r.get_data(as_text=True)


def test_fetch_result_queries_the_channel_and_updates_the_task(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    task = _tasks()[0]
    assert task.status == "processing"
    sandbox.release(org("ORG01").tax_id)
    r = auth.post("/sync-logs/fetch-results", {"ids": [str(task.id)]}, page="/sync-logs/")
    assert r.status_code == 302 and "/jobs/" in r.headers["Location"]
    run_worker()
    job = db.session.scalar(select(JobRun).where(JobRun.kind == "sync.fetch_results"))
    assert job.status == "done" and reload(task).status == "success"
    assert job.results[0]["message"].startswith("成功：下载 ")


def test_manual_query_after_login_expired_and_new_login_answers_task_processing(env, auth, sandbox):
    """Manual V2.0 note ②."""
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    task = _tasks()[0]
    sandbox.fault(org("ORG01").tax_id, "login_expired")
    auth.post("/sync-logs/fetch-results", {"ids": [str(task.id)]}, page="/sync-logs/")
    run_worker()
    job = db.session.scalar(select(JobRun).where(JobRun.kind == "sync.fetch_results"))
    assert job.results[0]["message"] == "任务处理中"
    page = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "任务处理中" in page


# --- 手工重试 ------------------------------------------------------------------------------------
def test_manual_retry_only_for_rpa_channel(env, auth):
    task = make_task("ORG02", "failed")  # 乐企
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert service.MSG_RPA_ONLY in r.get_data(as_text=True)
    assert reload(task).status == "failed"


@pytest.mark.parametrize("status", ["success", "processing", "no_data", "header_only", "downloaded"])
def test_manual_retry_only_for_failure_statuses(env, auth, status):
    task = make_task("ORG01", status, requested_at=clock.now() - timedelta(hours=1))
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert service.MSG_RETRY_STATUS in r.get_data(as_text=True)
    assert reload(task).status == status


@pytest.mark.parametrize("status", ["failed", "apply_failed", "incomplete"])
def test_manual_retry_of_failure_status_downloads_again(env, auth, status):
    task = make_task("ORG01", status, requested_at=clock.now() - timedelta(hours=1))
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "已重新发起下载请求" in r.get_data(as_text=True)
    task = reload(task)
    assert task.status == "processing" and task.retry_count == 1 and task.last_retry_at
    run_worker()
    assert reload(task).status == "success"


def test_same_task_retried_within_3_minutes_is_refused(env, auth, sandbox, monkeypatch):
    sandbox.downloads(org("ORG01").tax_id, outcome="apply_failed", mode="next")
    auth.login("kaipiao1")
    frozen = clock.now()  # the claim's 3 minutes count from here, however slow the machine
    monkeypatch.setattr(clock, "now", lambda: frozen)
    _create(auth)
    run_worker()
    task = _tasks()[0]
    assert task.status == "apply_failed"
    _later(monkeypatch, 179)
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "相同的任务重复请求过于频繁，请3分钟后再重试。" in r.get_data(as_text=True)
    assert reload(task).status == "apply_failed"
    _later(monkeypatch, 181)
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "已重新发起下载请求" in r.get_data(as_text=True)


def test_small_scale_taxpayer_retry_of_deduction_selection_task_is_refused(env, auth):
    task = make_task("ORG03", "failed", download_type="unselected_init",
                     requested_at=clock.now() - timedelta(hours=1))
    auth.login("zhuguan")
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "小规模纳税人不支持抵扣类勾选数据下载" in html and "企业基础资料中修改纳税人类型" in html
    assert reload(task).status == "failed"


# --- 作废任务 ------------------------------------------------------------------------------------
def test_void_asks_for_confirmation_with_the_count(env, auth):
    tasks = [make_task("ORG01", "processing") for _ in range(3)]
    auth.login("zhuguan")
    r = auth.post("/sync-logs/void", {"ids": [str(t.id) for t in tasks]}, page="/sync-logs/")
    assert "确定作废 3 个任务吗" in r.get_data(as_text=True)
    assert {reload(t).status for t in tasks} == {"processing"}


def test_void_only_tasks_in_progress_and_at_the_channel_too(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("zhuguan")
    _create(auth)
    run_worker()
    running = _tasks()[0]
    done = make_task("ORG01", "success")
    r = auth.post("/sync-logs/void", {"ids": [str(running.id), str(done.id)], "confirmed": "1"}, page="/sync-logs/", follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "仅下载处理中的任务可作废（当前：成功）" in html and "已作废" in html
    run_worker()  # voids at the channel through the outbox
    assert reload(running).status == "voided" and reload(done).status == "success"
    message = db.session.scalar(select(OutboxMessage))
    assert (message.kind, message.status, message.attempts) == ("sync.void_download", "delivered", 1)
    answer = make_client(org("ORG01").channel_config()).query_download(reload(running).channel_task_id)
    assert answer.message == "下载任务已作废"


def test_void_more_than_500_is_refused_and_nothing_voided(env, auth):
    for _ in range(501):
        make_task("ORG01", "processing")
    auth.login("zhuguan")
    r = auth.post("/sync-logs/void", {"select_all": "1", "filters": "status=processing", "confirmed": "1"},
                  page="/sync-logs/", follow_redirects=True)
    assert "作废任务单次最多500个" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(SyncTask.status == "voided")) == 0


def test_void_500_at_once_is_allowed(env, auth):
    for _ in range(500):
        make_task("ORG01", "processing")
    auth.login("zhuguan")
    r = auth.post("/sync-logs/void", {"select_all": "1", "filters": "status=processing", "confirmed": "1"},
                  page="/sync-logs/", follow_redirects=True)
    assert "成功 500 条" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(SyncTask.status == "voided")) == 500


# --- permissions by accounting organisation ---------------------------------------------------------
def test_list_shows_only_organisations_the_user_may_query(env, auth):
    mine, other = make_task("ORG01", "success"), make_task("ORG03", "success")
    auth.login("kaipiao1")
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert mine.batch_no in html and other.batch_no not in html
    assert auth.client.get(f"/sync-logs/{other.id}").status_code == 404


def test_action_on_rows_of_an_organisation_without_grant_changes_nothing(env, auth):
    other = make_task("ORG03", "failed", requested_at=clock.now() - timedelta(hours=1))
    auth.login("kaipiao1")  # may retry on ORG01/ORG02 only; forges the id of an ORG03 task
    r = auth.post("/sync-logs/retry", {"ids": [str(other.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "请先选择要操作的任务" in r.get_data(as_text=True)
    assert reload(other).status == "failed"


def test_row_of_org_with_query_but_without_button_grant_is_skipped_with_reason(env, auth):
    from portal.models import Grant, User
    clerk = db.session.scalar(select(User).where(User.username == "kaipiao1"))
    db.session.add(Grant(user_id=clerk.id, org_id=org("ORG03").id, permission="F18012.query"))
    db.session.commit()
    task = make_task("ORG03", "failed", requested_at=clock.now() - timedelta(hours=1))
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "无「手工重试」权限（核算组织：上海浦东小微商行）" in r.get_data(as_text=True)
    assert reload(task).status == "failed"


def test_unauthorised_button_shown_and_refused_when_hide_parameter_off(env, auth):
    task = make_task("ORG03", "processing")
    auth.login("kaipiao2")  # no 作废任务 grant anywhere
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert "作废任务" in html
    r = auth.post("/sync-logs/void", {"ids": [str(task.id)], "confirmed": "1"}, page="/sync-logs/",
                  follow_redirects=True)
    assert "您没有「作废任务」的权限，请联系管理员授权" in r.get_data(as_text=True)
    assert reload(task).status == "processing"


def test_unauthorised_button_hidden_when_hide_parameter_on(env, auth):
    from portal.admin.service import set_parameter
    set_parameter("hide_unauthorized_buttons", "1")
    auth.login("kaipiao2")
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert "作废任务" not in html and "手工重试" not in html and "获取异步结果" in html


# --- 导出 ----------------------------------------------------------------------------------------
def _sheet(response):
    ws = load_workbook(io.BytesIO(response.data)).active
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_export_selected_rows_to_xlsx(env, auth):
    a, b, _ = make_task("ORG01", "success"), make_task("ORG02", "failed", error="税局繁忙"), make_task("ORG01", "no_data")
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/export", {"ids": [str(a.id), str(b.id)]}, page="/sync-logs/")
    rows = _sheet(r)
    assert rows[0][:4] == ["下载批次号", "核算组织编码", "核算组织", "同步状态"]
    assert {row[0] for row in rows[1:]} == {a.batch_no, b.batch_no}
    by_batch = {row[0]: row for row in rows[1:]}
    assert by_batch[b.batch_no][3] == "下载失败" and by_batch[b.batch_no][10] == "税局繁忙"
    assert by_batch[a.batch_no][4] == "进项-全量" and by_batch[a.batch_no][11] == "RPA"


def test_export_all_rows_matching_the_filter(env, auth):
    for status in ["success", "success", "failed"]:
        make_task("ORG01", status)
    make_task("ORG03", "success")  # not visible to kaipiao1
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/export", {"select_all": "1", "filters": "status=success"}, page="/sync-logs/")
    rows = _sheet(r)
    assert len(rows) == 3 and {row[3] for row in rows[1:]} == {"成功"}


def test_big_export_runs_as_a_job_with_progress_and_a_download_link(env, auth):
    env.config["EXPORT_SYNC_LIMIT"] = 5
    for _ in range(12):
        make_task("ORG01", "success")
    auth.login("kaipiao1")
    r = auth.post("/sync-logs/export", {"select_all": "1", "filters": ""}, page="/sync-logs/")
    assert r.status_code == 302
    job_url = r.headers["Location"]
    assert "progress" in auth.client.get(job_url).get_data(as_text=True)
    run_worker()
    page = auth.client.get(job_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "已导出 12 条" in page and "下载文件" in page
    job = db.session.scalar(select(JobRun))
    rows = _sheet(auth.client.get(f"/jobs/{job.id}/file"))
    assert len(rows) == 13


def test_export_job_file_is_private_to_its_owner(env, auth):
    env.config["EXPORT_SYNC_LIMIT"] = 0
    make_task("ORG01", "success")
    auth.login("kaipiao1")
    auth.post("/sync-logs/export", {"select_all": "1", "filters": ""}, page="/sync-logs/")
    run_worker()
    job = db.session.scalar(select(JobRun))
    auth.post("/logout")
    auth.login("kaipiao2")
    assert auth.client.get(f"/jobs/{job.id}/file").status_code == 404


# --- list, detail, watchdog ----------------------------------------------------------------------------
def test_list_filters_by_batch_number_prefix_and_status_tab(env, auth):
    a = make_task("ORG01", "failed")
    b = make_task("ORG01", "success", batch_no="DLOTHER0001")
    auth.login("kaipiao1")
    html = auth.client.get("/sync-logs/?status=failed").get_data(as_text=True)
    assert a.batch_no in html and b.batch_no not in html
    assert "下载失败 (1)" in html and "成功 (1)" in html and "全部 (2)" in html
    html = auth.client.get(f"/sync-logs/?batch_no={a.batch_no[:10]}").get_data(as_text=True)
    assert a.batch_no in html and b.batch_no not in html and "共 1 条" in html
    assert "成功 (" not in html  # a prefix is not a counted dimension: the tabs carry no numbers …
    html = auth.client.get(f"/sync-logs/?batch_no={a.batch_no[:10]}&count=exact").get_data(as_text=True)
    assert "成功 (0)" in html and "下载失败 (1)" in html and "全部 (1)" in html  # … until asked


def test_batch_detail_lists_invoices_with_pool_status_and_failure_reason(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="success", defective=1, mode="next")
    auth.login("kaipiao1")
    _create(auth)
    run_worker()
    task = _tasks()[0]
    html = auth.client.get(f"/sync-logs/{task.id}").get_data(as_text=True)
    assert "已入池" in html and "处理失败" in html and "正常" in html
    failed = db.session.scalar(select(SyncTaskInvoice).where(SyncTaskInvoice.outcome == "failed"))
    assert failed.failure_reason in html


def test_waiting_time_is_shown_for_tasks_in_progress(env, auth, monkeypatch):
    task = make_task("ORG01", "processing")
    _later(monkeypatch, 25 * 60)
    auth.login("kaipiao1")
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert "下载处理中 · 正在向税局申请下载（已等待 25分钟）" in html
    assert task


def test_sweeper_queries_tasks_in_progress_when_their_look_is_due(env, auth, sandbox, monkeypatch):
    from portal.sync_logs import channel_work
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    _create(auth)
    env.config.update(SYNC_POLL_DELAY_SECONDS=60, SYNC_POLL_ATTEMPTS=0)  # only the sweeper looks again
    run_worker()
    task = _tasks()[0]
    assert task.status == "processing" and task.next_check_at > clock.now()
    sandbox.release(org("ORG01").tax_id)
    assert channel_work.sweep() == 0  # not due yet
    _later(monkeypatch, 11 * 60)
    assert channel_work.sweep() == 1
    run_worker()
    assert reload(task).status == "success"


# --- 手工导入 ----------------------------------------------------------------------------------------
def _bureau_file(rows, header=None):
    wb = Workbook()
    ws = wb.active
    ws.append(header or ["发票代码", "发票号码", "开票日期", "销方识别号", "销方名称", "购方识别号", "购方名称",
                         "金额", "税额", "价税合计", "发票状态", "发票票种"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


ROW = ["", "26110000000000000001", "2026-11-03", "9144030071526726XG", "深圳前海贸易有限公司",
       "91110000600037341L", "华东科技有限公司", 100, 13, 113, "正常", "01"]


def _import(auth, buf, org_code="ORG01", name="export.xlsx"):
    """手工导入 as a user does it: post the form, let the worker run the job, read its page."""
    r = auth.post("/sync-logs/import", {"org": str(org(org_code).id), "download_type": "in_full",
                                        "file": (buf, name)}, page="/sync-logs/import",
                  content_type="multipart/form-data")
    if r.status_code != 302:
        return r  # refused in the request: the form again, with the reason
    run_worker()
    return auth.client.get(r.headers["Location"])


def test_manual_import_creates_a_task_with_its_invoices(env, auth):
    auth.login("kaipiao1")
    second = list(ROW)
    second[1] = "26110000000000000002"
    r = _import(auth, _bureau_file([ROW, second]))
    assert "导入完成" in r.get_data(as_text=True)
    task = _tasks()[0]
    assert task.sync_type == "manual_import" and task.status == "success"
    assert task.invoice_count == task.success_count == 2
    assert db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 2


def test_manual_import_with_wrong_template_is_refused_and_nothing_changes(env, auth):
    auth.login("kaipiao1")
    r = _import(auth, _bureau_file([ROW[:3]], header=["发票号码", "开票日期", "金额"]))
    assert "模板不正确：缺少列" in r.get_data(as_text=True)
    assert _tasks() == []


def test_manual_import_with_bad_cells_names_row_and_column(env, auth):
    auth.login("kaipiao1")
    bad = list(ROW)
    bad[1], bad[2], bad[7] = "26110000000000000002", "2026-13-40", "abc"
    r = _import(auth, _bureau_file([ROW, bad]))
    html = r.get_data(as_text=True)
    assert "第 3 行「开票日期」" in html and "第 3 行「金额」" in html
    assert _tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0


def test_manual_import_of_a_file_that_is_not_excel_is_refused(env, auth):
    auth.login("kaipiao1")
    r = _import(auth, io.BytesIO(b"not an excel file"), name="x.xlsx")
    assert "文件无法读取" in r.get_data(as_text=True)
    assert _tasks() == []


# --- 调度计划 ----------------------------------------------------------------------------------------
def _plan(code):
    return db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == code))


def test_default_plans_exist(env):
    codes = set(db.session.scalars(select(SchedulePlan.code)))
    assert {"sim_SyncTodayInvoiceTask", "sim_SyncMonthInvoiceTask", "sim_SyncTaskWatchdog"} <= codes


def test_due_plan_is_enqueued_once_and_runs(env, monkeypatch):
    from jobs import plans, queue
    plan = _plan("sim_SyncTodayInvoiceTask")
    plan.next_run_at = clock.now() - timedelta(seconds=1)
    db.session.commit()
    assert plans.dispatch_due() == ["sim_SyncTodayInvoiceTask"]
    assert plans.dispatch_due() == []
    assert queue().count == 1
    run_worker()
    plan = _plan("sim_SyncTodayInvoiceTask")
    assert "当天进销项下载：创建 12 个任务" in plan.last_result  # 6 orgs × 进项/销项
    assert plan.next_run_at > clock.now()


def test_two_dispatchers_at_once_never_enqueue_a_plan_twice(env):
    from jobs import plans, queue
    for plan in db.session.scalars(select(SchedulePlan)):
        plan.next_run_at = clock.now() - timedelta(seconds=1)
    db.session.commit()
    results, barrier = [], threading.Barrier(2)

    def tick():
        with env.app_context():
            barrier.wait()
            results.append(plans.dispatch_due())
            db.session.remove()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from portal.models.sync import DEFAULT_PLANS
    enqueued = [code for r in results for code in r]
    assert sorted(enqueued) == sorted(set(enqueued)) and len(enqueued) == len(DEFAULT_PLANS)
    assert queue().count == len(DEFAULT_PLANS)


def test_admin_edits_a_plan_and_the_dispatcher_uses_it_without_restart(env, auth):
    from jobs import plans
    plan = _plan("sim_SyncTaskWatchdog")
    auth.login("admin")
    r = auth.post(f"/admin/plans/{plan.id}", {"description": "每两分钟", "interval_seconds": "120",
                                              "cron": "", "enabled": "1"}, page=f"/admin/plans/{plan.id}")
    assert r.status_code == 302
    plans.dispatch_due()
    plan = _plan("sim_SyncTaskWatchdog")
    assert plan.interval_seconds == 120
    assert timedelta(seconds=119) < plan.next_run_at - clock.now() <= timedelta(seconds=121)


def test_plan_with_invalid_cron_is_refused(env, auth):
    plan = _plan("sim_SyncTodayInvoiceTask")
    auth.login("admin")
    r = auth.post(f"/admin/plans/{plan.id}", {"description": "x", "cron": "61 * * *", "enabled": "1"},
                  page=f"/admin/plans/{plan.id}")
    assert "Cron 表达式“61 * * *”不正确" in r.get_data(as_text=True)
    assert _plan("sim_SyncTodayInvoiceTask").cron == "0 23 * * *"

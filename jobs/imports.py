"""Import jobs: an uploaded workbook, checked whole, then written in short transactions."""
from __future__ import annotations

from portal.i18n import gettext as _

from jobs.tracked import tracked
from portal import maintenance
from portal.extensions import db


@tracked
def manual_import(ctx, upload_id: int, org_id: int, download_type: str, batch_no: str) -> None:
    """手工导入: parse (capped process) and validate every row; any error rejects the file
    with nothing written; else pool the invoices in batches into task `batch_no`."""
    from portal.channels.base import DownloadType
    from portal.excel import uploads
    from portal.sync_logs import importing, scope

    task = importing.find_task(batch_no)
    if task is not None and task.status == "success":  # ran already (a job run twice)
        _report(ctx, task)
        return
    upload = db.session.get(uploads.Upload, upload_id)
    if upload is None:
        raise RuntimeError(_("上传的文件已不存在（超过保留时间），请重新导入"))
    user = ctx.job.user
    org = next((o for o in scope.orgs(user, "F18012.create") if o.id == org_id), None) if user else None
    if org is None:
        raise RuntimeError(_("没有该核算组织的新增下载任务权限，文件未导入"))
    filename, data = upload.filename, bytes(upload.data)
    db.session.expunge(upload)
    ctx.progress(0, message=_("正在检查文件"))
    invoices, errors = importing.read_bureau_file(data)
    del data
    if errors:
        for error in errors:
            ctx.item(filename, "failed", error)
        uploads.discard(upload_id)
        ctx.finish(_("文件未导入，数据未作任何修改：发现 %(n)s 处错误（见下表）",
                     n=len(errors)))
        return
    ctx.progress(0, total=len(invoices), message=_("正在入池"))
    task = importing.import_task(org, DownloadType(download_type), invoices, batch_no,
                                 actor=user.username, progress=ctx.progress)
    uploads.discard(upload_id)
    uploads.purge_expired()
    maintenance.refresh_statistics()  # thousands of new pool rows: the planner should know at once
    _report(ctx, task)


def _report(ctx, task) -> None:
    summary = _("批次 %(batch)s，%(status)s，下载 %(n)s 份，入池 %(ok)s 份", batch=task.batch_no,
                status=task.status_label, n=task.invoice_count, ok=task.success_count)
    ctx.item(task.batch_no, "done", summary, ref=task.id)
    ctx.progress(task.invoice_count)
    ctx.finish(_("导入完成：%(summary)s", summary=summary))

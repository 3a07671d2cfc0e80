"""The invoice file (版式文件) served per issued or downloaded invoice.

Uses a CJK font when one is installed (Debian package fonts-wqy-microhei); without one
the file is still a valid PDF, with Chinese text replaced so nothing fails.
"""
from __future__ import annotations

import os
from functools import lru_cache

from fpdf import FPDF

CJK_FONTS = (
    os.environ.get("SANDBOX_CJK_FONT", ""),
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
TYPE_TITLES = {"01": "电子发票（增值税专用发票）", "02": "电子发票（普通发票）",
               "004": "增值税专用发票", "007": "增值税普通发票",
               "026": "增值税电子普通发票", "028": "增值税电子专用发票"}


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    return next((p for p in CJK_FONTS if p and os.path.exists(p)), None)


def render_invoice(inv: dict) -> bytes:
    """A one-page A5-landscape invoice: header, parties, lines, totals."""
    pdf = FPDF(orientation="L", format=(148, 210))
    pdf.set_auto_page_break(True, margin=8)
    pdf.add_page()
    font = cjk_font()
    if font:
        pdf.add_font("cjk", fname=font)
        pdf.set_font("cjk", size=9)

        def t(s) -> str:
            return str(s)
    else:
        pdf.set_font("helvetica", size=9)

        def t(s) -> str:
            return str(s).encode("latin-1", "replace").decode("latin-1")

    title = TYPE_TITLES.get(inv.get("invoice_type", ""), "发票")
    if inv.get("is_red") or str(inv.get("total", "")).startswith("-"):
        title += "（红字）"
    pdf.set_font_size(14)
    pdf.cell(0, 9, t(title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(9)
    head = [("发票号码", inv.get("invoice_no", "")), ("发票代码", inv.get("invoice_code", "") or "-"),
            ("开票日期", inv.get("issue_date", ""))]
    pdf.cell(0, 6, t("    ".join(f"{k}：{v}" for k, v in head)), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, t(f"购买方：{inv.get('buyer_name', '')}  统一社会信用代码：{inv.get('buyer_tax_id', '')}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, t(f"销售方：{inv.get('seller_name', '')}  统一社会信用代码：{inv.get('seller_tax_id', '')}"),
             new_x="LMARGIN", new_y="NEXT")
    widths = (60, 22, 14, 18, 22, 24, 14, 22)
    cols = ("项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额")
    for w, c in zip(widths, cols):
        pdf.cell(w, 6, t(c), border=1)
    pdf.ln()
    for line in inv.get("lines") or []:
        rate = line.get("tax_rate", "")
        try:
            rate = f"{float(rate) * 100:g}%"
        except (TypeError, ValueError):
            pass
        values = (line.get("name", ""), line.get("spec", ""), line.get("unit", ""),
                  line.get("quantity", ""), line.get("unit_price", ""), line.get("amount", ""),
                  rate, line.get("tax_amount", ""))
        for w, v in zip(widths, values):
            pdf.cell(w, 6, t(v if v is not None else "")[:40], border=1)
        pdf.ln()
    pdf.cell(0, 7, t(f"合计金额：{inv.get('amount', '')}   合计税额：{inv.get('tax_amount', '')}   "
                     f"价税合计：{inv.get('total', '')}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, t("本文件由税局沙箱生成，仅供测试"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

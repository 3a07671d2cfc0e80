"""Taxpayer identifiers: USCC (统一社会信用代码) check character, GB 32100-2015."""
from __future__ import annotations

import re

from portal.i18n import gettext

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28
_OLD_ID = re.compile(r"^[0-9A-Z]{15,20}$")


def uscc_check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def validate_tax_id(tax_id: str, override: bool = False) -> str | None:
    """None when valid, else a message saying exactly what is wrong.

    18-character IDs are USCCs and must pass the check character unless the
    organisation carries an explicit override (a few early legal codes fail it).
    """
    tax_id = (tax_id or "").strip()
    if not tax_id:
        return gettext("纳税人识别号不能为空")
    if len(tax_id) == 18:
        bad = [c for c in tax_id if c not in ALPHABET]
        if bad:
            return gettext("纳税人识别号含非法字符“%(c)s”（统一社会信用代码不使用 I、O、S、V、Z 及小写字母）", c=bad[0])
        expected = uscc_check_char(tax_id[:17])
        if tax_id[17] != expected and not override:
            return gettext("纳税人识别号校验位错误：第18位应为“%(expected)s”，实为“%(actual)s”。"
                           "如确为合法的早期代码，请勾选“校验例外”", expected=expected, actual=tax_id[17])
        return None
    if not _OLD_ID.match(tax_id):
        return gettext("纳税人识别号应为15至20位数字或大写字母（统一社会信用代码为18位）")
    return None

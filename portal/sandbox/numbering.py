"""Invoice numbers the way the bureau shapes them, and valid fake taxpayer ids."""
from __future__ import annotations

from datetime import date

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CHANNEL_DIGIT = {"rpa": "1", "leqi": "2", "generated": "9"}


def uscc(first17: str) -> str:
    """Append the GB 32100-2015 check character to 17 characters."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return first17 + USCC_ALPHABET[(31 - total % 31) % 31]


def province(taxpayer_id: str) -> str:
    """Province code (2 digits) from the region part of a USCC; 11 (北京) otherwise."""
    code = taxpayer_id[2:4] if len(taxpayer_id) == 18 else taxpayer_id[:2]
    return code if code.isdigit() else "11"


def digital_number(year: int, taxpayer_id: str, channel: str, sequence: int) -> str:
    """20-digit 数电 number: year(2) + province(2) + channel(1) + sequence(15)."""
    return f"{year % 100:02d}{province(taxpayer_id)}{CHANNEL_DIGIT[channel]}{sequence % 10**15:015d}"


def taxctrl_code_and_number(day: date, taxpayer_id: str, invoice_type: str,
                            sequence: int) -> tuple[str, str]:
    """税控: 12-digit 发票代码 (province, year, type) + 8-digit 发票号码."""
    code = f"0{province(taxpayer_id)}00{day.year % 100:02d}{invoice_type[-3:]:0>3}{sequence // 10**8 % 100:02d}"
    return code, f"{sequence % 10**8:08d}"


def red_form_number(day: date, taxpayer_id: str, sequence: int) -> str:
    """20-digit 红字确认单编号."""
    return f"{day.year % 100:02d}{province(taxpayer_id)}8{sequence % 10**15:015d}"

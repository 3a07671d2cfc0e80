"""The one interface every channel client (RPA, 乐企, 税控) implements.

A channel call never raises for a bureau answer: it returns a ChannelResult whose
``outcome`` says what the caller may do next.  The split matters for "no invoice is
issued twice": only SUCCESS and FAILED are definitive.  RETRYABLE means the bureau
refused before doing anything (login expired, busy, rate limited) and the call may be
sent again later.  UNKNOWN means the request may or may not have taken effect
(timeout, lost response, 未知异常): the caller must *query* before any resend.
"""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date

from portal.i18n import lazy_gettext as _l


def N_(message: str) -> str:
    """Marks a message for the catalogue without translating it: the channels' reason
    messages are stored as the bureau's words; lists translate them at render time."""
    return message


class ChannelKind(str, enum.Enum):
    RPA = "rpa"        # RPA: drives the bureau web portal; does NOT de-duplicate serials
    LEQI = "leqi"      # 乐企: direct bureau API; de-duplicates by serial number
    TAXCTRL = "taxctrl"  # 税控: tax-control device; de-duplicates by serial number

    @property
    def label(self) -> str:
        return {"rpa": _l("RPA"), "leqi": _l("乐企"), "taxctrl": _l("税控")}[self.value]


class Outcome(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"        # definitive: the bureau said no; reason_code + message
    RETRYABLE = "retryable"  # nothing happened at the bureau; safe to send again later
    UNKNOWN = "unknown"      # may have taken effect: query, never resend blindly


class DownloadType(str, enum.Enum):
    """下载类型 of the F18012 manual."""
    IN_FULL = "in_full"                # 进项-全量
    OUT_FULL = "out_full"              # 销项-全量
    IN_STATUS = "in_status"            # 进项状态更新
    IN_INCR = "in_incr"                # 进项-增量
    UNSELECTED_INIT = "unselected_init"  # 未勾选数据初始化 (deduction selection)
    IN_EINV_FILE = "in_einv_file"      # 进项-数电发票文件下载

    @property
    def label(self) -> str:
        return DOWNLOAD_TYPE_LABELS[self]

    @property
    def is_deduction_selection(self) -> bool:
        """Deduction-selection (抵扣勾选) downloads; not for 小规模纳税人."""
        return self is DownloadType.UNSELECTED_INIT


DOWNLOAD_TYPE_LABELS = {
    DownloadType.IN_FULL: _l("进项-全量"),
    DownloadType.OUT_FULL: _l("销项-全量"),
    DownloadType.IN_STATUS: _l("进项状态更新"),
    DownloadType.IN_INCR: _l("进项-增量"),
    DownloadType.UNSELECTED_INIT: _l("未勾选数据初始化"),
    DownloadType.IN_EINV_FILE: _l("进项-数电发票文件下载"),
}


class DownloadStatus(str, enum.Enum):
    """What the bureau says about a download task (query_download data['status'])."""
    PROCESSING = "processing"    # → 下载处理中
    SUCCESS = "success"          # → 数据已下载 (then 成功 once pooled)
    NO_DATA = "no_data"          # → 没有数据
    HEADER_ONLY = "header_only"  # → 已下载表头
    INCOMPLETE = "incomplete"    # → 进销项数据不全
    FAILED = "failed"            # → 下载失败


class ReasonCode(str, enum.Enum):
    """Failure reasons a channel returns (DOMAIN.md); ``message`` carries the bureau text."""
    LOGIN_EXPIRED = "login_expired"            # 电子税局登录失效，请重试
    BUREAU_BUSY = "bureau_busy"                # 税局繁忙，请稍后再试
    UNKNOWN_ERROR = "unknown_error"            # 未知异常
    DUPLICATE_NUMBER = "duplicate_number"      # 发票号码已存在
    QUOTA_EXHAUSTED = "quota_exhausted"        # 授信额度不足
    RED_FORM_PENDING = "red_form_pending"      # 该发票存在进行中的红字确认单
    BLUE_NOT_FOUND = "blue_not_found"          # 红字确认单对应蓝字发票不存在
    SAME_BUYER_SELLER = "same_buyer_seller"    # 购销方不能为同一家企业
    ACCOUNT_NOT_CONFIGURED = "account_not_configured"  # 未配置数电开票账号
    SINGLE_LIMIT_EXCEEDED = "single_limit_exceeded"    # 开票单张金额超限
    RESULT_NOT_READY = "result_not_ready"      # 未查询到开票结果，请稍后再试
    FACE_CHECK_FAILED = "face_check_failed"    # 人脸核验失败
    GATEWAY_TIMEOUT = "gateway_timeout"        # 网关超时
    RATE_LIMITED = "rate_limited"              # 请求过于频繁
    TIMEOUT = "timeout"                        # client-side read timeout (outcome unknown)
    CONNECTION_ERROR = "connection_error"      # could not connect (nothing sent)
    INVALID_REQUEST = "invalid_request"        # the bureau rejected the payload (field errors)
    TAXPAYER_TYPE = "taxpayer_type"            # 小规模纳税人 cannot use this download type
    NOT_SUPPORTED = "not_supported"            # operation not offered by this channel
    NOT_FOUND = "not_found"                    # no such task / serial / invoice
    RESPONSE_LOST = "response_lost"            # connection dropped after sending (outcome unknown)
    AUTH_FAILED = "auth_failed"                # app_key / signature rejected by the channel
    DOWNLOAD_APPLY_FAILED = "download_apply_failed"  # 进销项下载申请失败
    DOWNLOAD_FAILED = "download_failed"        # 下载失败: the bureau could not produce the data


REASON_MESSAGES = {
    ReasonCode.LOGIN_EXPIRED: N_("电子税局登录失效，请重试"),
    ReasonCode.BUREAU_BUSY: N_("税局繁忙，请稍后再试"),
    ReasonCode.UNKNOWN_ERROR: N_("未知异常"),
    ReasonCode.DUPLICATE_NUMBER: N_("发票号码已存在"),
    ReasonCode.QUOTA_EXHAUSTED: N_("授信额度不足"),
    ReasonCode.RED_FORM_PENDING: N_("该发票存在进行中的红字确认单"),
    ReasonCode.BLUE_NOT_FOUND: N_("红字确认单对应蓝字发票不存在"),
    ReasonCode.SAME_BUYER_SELLER: N_("购销方不能为同一家企业"),
    ReasonCode.ACCOUNT_NOT_CONFIGURED: N_("未配置数电开票账号"),
    ReasonCode.SINGLE_LIMIT_EXCEEDED: N_("开票单张金额超限"),
    ReasonCode.RESULT_NOT_READY: N_("未查询到开票结果，请稍后再试"),
    ReasonCode.FACE_CHECK_FAILED: N_("人脸核验失败"),
    ReasonCode.GATEWAY_TIMEOUT: N_("网关超时"),
    ReasonCode.RATE_LIMITED: N_("请求过于频繁，请稍后再试"),
    ReasonCode.TIMEOUT: N_("通道响应超时，结果未知"),
    ReasonCode.CONNECTION_ERROR: N_("无法连接通道服务"),
    ReasonCode.INVALID_REQUEST: N_("请求数据不合法"),
    ReasonCode.TAXPAYER_TYPE: N_("小规模纳税人不支持抵扣类勾选数据下载"),
    ReasonCode.NOT_SUPPORTED: N_("该通道不支持此操作"),
    ReasonCode.NOT_FOUND: N_("未找到对应数据"),
    ReasonCode.RESPONSE_LOST: N_("通道连接中断，结果未知"),
    ReasonCode.AUTH_FAILED: N_("通道鉴权失败，请检查AppKey与密钥"),
    ReasonCode.DOWNLOAD_APPLY_FAILED: N_("进销项下载申请失败：无法连接税局下载"),
    ReasonCode.DOWNLOAD_FAILED: N_("下载失败：税局数据文件生成失败"),
}


@dataclass
class ChannelResult:
    outcome: Outcome
    data: dict = field(default_factory=dict)
    reason_code: str | None = None  # a ReasonCode value when not SUCCESS
    message: str = ""               # the bureau's own text, shown to users

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@dataclass
class ChannelConfig:
    """Per-organisation channel settings (stored on the organisation)."""
    kind: ChannelKind
    base_url: str
    taxpayer_id: str
    app_key: str = ""
    app_secret: str = field(default="", repr=False)  # never logged (kept out of repr)
    connect_timeout: float = 3.0
    read_timeout: float = 15.0


class ChannelClient(ABC):
    """Operations every channel offers; unsupported ones answer FAILED/NOT_SUPPORTED."""

    kind: ChannelKind

    def __init__(self, config: ChannelConfig):
        self.config = config

    # --- issuing -------------------------------------------------------------
    @abstractmethod
    def issue_invoice(self, invoice: dict) -> ChannelResult:
        """Submit one invoice. ``invoice['serial_no']`` (流水号) is the idempotency key.
        SUCCESS data: {'serial_no', 'status': 'accepted'|'issued', and when issued
        'invoice_no', 'invoice_code', 'issued_at', 'pdf_url'}."""

    @abstractmethod
    def query_issue(self, serial_no: str) -> ChannelResult:
        """Query the result of an issue by serial number. SUCCESS data['status'] is one of
        'pending' | 'issued' | 'failed' | 'not_found'; when issued also 'invoice_no',
        'invoice_code', 'issued_at', 'pdf_url'; when failed 'reason_code', 'message'."""

    @abstractmethod
    def verify_invoice(self, invoice_no: str, invoice_code: str = "",
                       issue_date: date | None = None, amount: str | None = None) -> ChannelResult:
        """查验: SUCCESS data {'exists': bool, 'invoice': {...} when it exists}."""

    @abstractmethod
    def create_red_confirmation(self, blue_invoice_no: str, reason: str, lines: list[dict],
                                serial_no: str) -> ChannelResult:
        """红字发票信息确认单: SUCCESS data {'form_no', 'status'}."""

    # --- session -------------------------------------------------------------
    @abstractmethod
    def login_status(self) -> ChannelResult:
        """SUCCESS data {'logged_in': bool, 'expires_at': iso or None}."""

    @abstractmethod
    def login(self) -> ChannelResult:
        """Log in again after 电子税局登录失效 (RPA: face/SMS; here a plain call)."""

    @abstractmethod
    def quota(self) -> ChannelResult:
        """授信额度: SUCCESS data {'total': str, 'used': str, 'remaining': str}."""

    # --- downloads (F18012) ---------------------------------------------------
    @abstractmethod
    def apply_download(self, download_type: DownloadType, start: date, end: date,
                       request_id: str) -> ChannelResult:
        """Apply for a download task. SUCCESS data {'task_id'}."""

    @abstractmethod
    def query_download(self, task_id: str, with_lines: bool = True) -> ChannelResult:
        """SUCCESS data {'status': DownloadStatus value, 'message', 'invoices': [...]}."""

    @abstractmethod
    def void_download(self, task_id: str) -> ChannelResult:
        """Void (作废) a download task at the channel. SUCCESS data {'status': 'voided'}."""

from portal.i18n import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, PasswordField, SelectField, BooleanField, FloatField
from wtforms.validators import DataRequired, Length, Optional, URL, NumberRange, ValidationError

from portal.channels.base import ChannelKind
from portal.models import Role, TaxpayerType
from portal.taxid import validate_tax_id as check_tax_id


class OrganizationForm(FlaskForm):
    code = StringField(_l("组织编码"), validators=[DataRequired(_l("请输入组织编码")), Length(max=40)])
    name = StringField(_l("组织名称"), validators=[DataRequired(_l("请输入组织名称")), Length(max=200)])
    tax_id = StringField(_l("纳税人识别号"), validators=[DataRequired(_l("请输入纳税人识别号")), Length(max=20)])
    tax_id_override = BooleanField(_l("校验例外（早期合法代码未通过校验位时勾选）"))
    taxpayer_type = SelectField(_l("纳税人类型"), choices=[(t.value, t.label) for t in TaxpayerType])
    channel = SelectField(_l("开票/下载通道"), choices=[(c.value, c.label) for c in ChannelKind])
    channel_base_url = StringField(_l("通道服务地址"), validators=[
        Optional(), URL(require_tld=False, message=_l("请输入完整的 http(s):// 地址")), Length(max=300)])
    channel_app_key = StringField(_l("通道账号（AppKey）"), validators=[Optional(), Length(max=120)])
    channel_app_secret = PasswordField(_l("通道密钥（留空则不修改）"), validators=[Optional(), Length(max=200)])
    channel_connect_timeout = FloatField(_l("连接超时（秒）"), default=3.0,
                                         validators=[NumberRange(0.1, 60, _l("连接超时应在 0.1～60 秒之间"))])
    channel_read_timeout = FloatField(_l("读取超时（秒）"), default=15.0,
                                      validators=[NumberRange(0.1, 600, _l("读取超时应在 0.1～600 秒之间"))])
    invoice_service = BooleanField(_l("已引入发票服务"), default=True)
    active = BooleanField(_l("启用"), default=True)

    def validate_tax_id(self, field):
        field.data = (field.data or "").strip().upper()
        message = check_tax_id(field.data, self.tax_id_override.data)
        if message:
            raise ValidationError(message)


class UserForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=60)])
    name = StringField(_l("姓名"), validators=[DataRequired(_l("请输入姓名")), Length(max=100)])
    role = SelectField(_l("角色"), choices=[(r.value, r.label) for r in Role])
    password = PasswordField(_l("密码（新建必填；编辑时留空则不修改）"), validators=[Optional(), Length(min=8, max=200, message=_l("密码至少 8 位"))])
    active = BooleanField(_l("启用"), default=True)

from flask_wtf import FlaskForm
from portal.i18n import lazy_gettext as _l
from wtforms import PasswordField, StringField, BooleanField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=60)])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=200)])
    remember = BooleanField(_l("保持登录"))

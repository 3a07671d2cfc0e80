"""Message lookup on the hot path: the catalogue once per request, not once per message.

flask_babel finds the catalogue anew for every message (context, domain, locale, cache
key), which cost about 1.5 ms on a list page of ~200 messages. The locale is fixed for a
request (flask_babel keeps it in the request's context too), so the catalogue is kept in
``g``. Templates (``_``/``gettext``) and the labels of Column/Filter/Action use this.
"""
from __future__ import annotations

from flask import g
from flask_babel import LazyString, get_translations


def translations():
    """The catalogue of the current request (or app context); flask_babel's own lookup
    outside one."""
    if not g:
        return get_translations()
    catalogue = g.get("_catalogue")
    if catalogue is None:
        catalogue = g._catalogue = get_translations()
    return catalogue


def gettext(string: str, **variables) -> str:
    text = translations().ugettext(string)
    return text if not variables else text % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    """A label defined at import time, translated when shown through the request's
    catalogue (flask_babel's own lazy_gettext looks the catalogue up anew each time)."""
    return LazyString(gettext, string, **variables)


def install(app) -> None:
    """Templates translate through the per-request catalogue (as flask_babel installs them,
    newstyle: autoescaped, %-formatting of keyword arguments)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )

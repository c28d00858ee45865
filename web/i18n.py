"""User-facing text of pages: Simplified Chinese by default, English available.

The language comes from ``?lang=``, then the ``lang`` cookie, then the server's default.
"""

from __future__ import annotations

from aiohttp import web

from web import keys

LANGUAGES = ("zh-CN", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "app_name": "穗会 SuiMeet 市政视频会议",
        "login": "登录",
        "logout": "退出",
        "email": "电子邮箱",
        "password": "密码",
        "login_failed": "邮箱或密码错误",
        "too_many": "登录失败次数过多，请稍后再试",
        "welcome": "欢迎",
        "role": "角色",
        "api_docs": "接口文档",
        "role_admin": "管理员",
        "role_secretariat": "秘书处",
        "role_staff": "工作人员",
        "language": "English",
    },
    "en": {
        "app_name": "SuiMeet municipal video conferencing",
        "login": "Log in",
        "logout": "Log out",
        "email": "Email",
        "password": "Password",
        "login_failed": "Wrong email or password",
        "too_many": "Too many failed logins; try again later",
        "welcome": "Welcome",
        "role": "Role",
        "api_docs": "API documentation",
        "role_admin": "Administrator",
        "role_secretariat": "Secretariat",
        "role_staff": "Staff",
        "language": "中文",
    },
}


def language(request: web.Request) -> str:
    for candidate in (request.query.get("lang"), request.cookies.get("lang")):
        if candidate in LANGUAGES:
            return candidate
    return request.app[keys.SETTINGS].locale


def texts(request: web.Request) -> dict[str, str]:
    return MESSAGES[language(request)]

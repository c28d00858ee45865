"""The reminder email of one occurrence, for one attendee (no calendar part: a reminder
changes nothing in the recipient's calendar).

For :mod:`scheduling.reminders`. Simplified Chinese by default, English on request.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from rooms.db import utcnow
from scheduling.imip import Mailbox
from scheduling.invitations import MailSettings

_TEXTS = {
    "zh-CN": {
        "subject": "会议提醒：{title}",
        "greeting": "{name}，您好：",
        "lead": "您参加的会议即将开始。",
        "title": "会议名称：{title}",
        "time": "时间：{time}",
        "join": "加入会议：{url}",
        "footer": "本邮件由 SuiMeet 会议系统发送。",
    },
    "en": {
        "subject": "Reminder: {title}",
        "greeting": "Dear {name},",
        "lead": "A meeting you are invited to starts soon.",
        "title": "Meeting: {title}",
        "time": "Time: {time}",
        "join": "Join: {url}",
        "footer": "Sent by the SuiMeet meeting system.",
    },
}


def reminder_email(
    mail: MailSettings, recipient: Mailbox, title: str, time: str, join_url: str
) -> EmailMessage:
    """The reminder of one occurrence for one attendee (plain text; no calendar part)."""
    texts = _TEXTS[mail.locale]
    message = EmailMessage(policy=SMTP)
    message["From"] = mail.sender.address()
    message["To"] = recipient.address()
    message["Subject"] = texts["subject"].format(title=title.replace("\n", " "))
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=mail.addresses.mail_domain)
    message["Content-Language"] = mail.locale
    lines = [
        texts["greeting"].format(name=recipient.name or recipient.email),
        "",
        texts["lead"],
        "",
        texts["title"].format(title=title),
        texts["time"].format(time=time),
        texts["join"].format(url=join_url),
        "",
        texts["footer"],
        "",
    ]
    message.set_content("\n".join(lines), charset="utf-8", cte="base64")
    return message

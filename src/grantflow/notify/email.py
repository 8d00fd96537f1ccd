"""Email over SMTP (stdlib ``smtplib``): plain text plus a simple HTML part.

An approval request carries Approve and Reject links to the request's page: they only open
it, the approver signs in there and decides. No link carries a token or decides by itself.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from grantflow.domain.notifications import CHANNEL_EMAIL
from grantflow.notify.base import DeliveryError, Notice, NoticeKind
from grantflow.notify.config import SmtpConfig

SUBJECTS = {
    NoticeKind.APPROVAL_NEEDED: "Approval needed: {summary}",
    NoticeKind.APPROVED: "Approved: {summary}",
    NoticeKind.REJECTED: "Rejected: {summary}",
    NoticeKind.GRANTED: "Access granted: {summary}",
    NoticeKind.EXPIRING: "Your access ends in 10 minutes: {summary}",
    NoticeKind.ENDED: "Access ended: {summary}",
    NoticeKind.FAILED: "Failed: {summary}",
}


def decision_links(notice: Notice) -> dict[str, str]:
    """Approve / Reject links: the request page (sign-in required), nothing more."""
    return {
        "Approve": f"{notice.link}?decision=approve",
        "Reject": f"{notice.link}?decision=reject",
    }


def _lines(notice: Notice) -> list[tuple[str, str]]:
    rows = [
        ("Requester", f"{notice.requester.name} <{notice.requester.email}>"),
        ("Integration", notice.integration),
        ("Resources", ", ".join(notice.resources)),
        ("Permission", notice.permission),
        ("Duration", f"{notice.duration_seconds // 60} min"),
        ("Justification", notice.justification or "-"),
        ("State", notice.state),
    ]
    if notice.reason:
        rows.append(("Reason", notice.reason))
    if notice.expires_at:
        rows.append(("Ends at", notice.expires_at.strftime("%Y-%m-%d %H:%M UTC")))
    sign_in = notice.access.get("sign_in_url")
    if sign_in:
        rows.append(("Sign in to AWS", str(sign_in)))
    return rows


def build_message(notice: Notice, to: str, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "[Grantflow] " + SUBJECTS[notice.kind].format(summary=notice.summary)
    msg["From"] = sender
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="grantflow")
    if notice.delivery_id:
        msg["X-Grantflow-Delivery"] = notice.delivery_id
    links = decision_links(notice) if notice.kind is NoticeKind.APPROVAL_NEEDED else {}
    text = [notice.summary, ""]
    text += [f"{k}: {v}" for k, v in _lines(notice)]
    text += [""] + [f"{label}: {url}" for label, url in links.items()]
    text += [f"Open the request: {notice.link}", "", "You sign in to Grantflow to decide."]
    msg.set_content("\n".join(text) + "\n")
    cells = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in _lines(notice)
    )
    buttons = " ".join(
        f"<a href='{html.escape(url)}'>{html.escape(label)}</a>" for label, url in links.items()
    )
    msg.add_alternative(
        f"<html><body><p>{html.escape(notice.summary)}</p><table>{cells}</table>"
        f"<p>{buttons}</p><p><a href='{html.escape(notice.link)}'>Open the request</a> "
        "(you sign in to Grantflow to decide)</p></body></html>",
        subtype="html",
    )
    return msg


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class EmailChannel:
    name = CHANNEL_EMAIL

    def __init__(self, settings: SmtpConfig) -> None:
        assert settings.smtp_host
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._sender = settings.smtp_from
        self._starttls = settings.smtp_starttls
        self._ssl = settings.smtp_ssl
        self._timeout = settings.smtp_timeout_seconds

    @classmethod
    def from_settings(cls, settings: SmtpConfig) -> EmailChannel | None:
        return cls(settings) if settings.smtp_host else None

    def targets(self, notice: Notice, flow_options: dict[str, Any]) -> list[str]:
        seen: dict[str, None] = {}
        for recipient in notice.recipients:
            if recipient.email:
                seen.setdefault(formataddr((recipient.name, recipient.email)), None)
        return list(seen)

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self._ssl:
            return smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._starttls:
                smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _deliver(self, message: EmailMessage) -> None:
        """Connect, sign in if configured, send ``message``; SMTP and socket errors raise."""
        with self._connect() as smtp:
            if self._username:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self._username, password)
            smtp.send_message(message)

    def send(self, notice: Notice, target: str) -> None:
        message = build_message(notice, target, self._sender)
        try:
            self._deliver(message)
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            raise DeliveryError(
                f"the SMTP server refused the recipient (SMTP {', '.join(map(str, codes))})",
                retryable=all(code < 500 for code in codes),  # 4xx: try again later
            ) from err
        except smtplib.SMTPResponseException as err:
            # 4xx is transient by definition; 5xx (auth, policy) needs a person to fix it
            raise DeliveryError(
                f"SMTP {err.smtp_code}: {_text(err.smtp_error)[:200]}",
                retryable=err.smtp_code < 500,
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {self._host}:{self._port}: {type(err).__name__}") from err

    def send_text(self, to: str, subject: str, body: str) -> None:
        """One plain-text email (an invitation link); DeliveryError when it cannot be sent."""
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, self._sender, to
        message["Message-ID"] = make_msgid(domain="grantflow")
        message.set_content(body)
        try:
            self._deliver(message)
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {self._host}:{self._port}: {type(err).__name__}") from err

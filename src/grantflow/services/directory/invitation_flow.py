"""Invitations end to end, as the API runs them: make one and email its link (or hand the
link back when there is no email to send), and spend one to set a password and sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from grantflow.notify.base import DeliveryError
from grantflow.notify.email import EmailChannel
from grantflow.services.audit import trail as audit
from grantflow.services.auth import web_sign_in
from grantflow.services.directory import invitations
from grantflow.store.db import transaction
from grantflow.store.models import User


@dataclass(frozen=True, slots=True)
class Sent:
    """The invitation made: where its link was emailed, or the link itself (shown once)."""

    user_id: str
    expires_at: datetime
    emailed_to: str | None = None
    link: str | None = None
    email_error: str | None = None


def invite(
    sessions: sessionmaker[Session],
    user_id: str,
    actor: audit.Actor,
    base_url: str,
    channel: EmailChannel | None,
) -> Sent:
    """A new invitation (the user's older ones revoked), emailed when ``channel`` is set
    and the user has an address; sent after the transaction commits."""
    with transaction(sessions) as session:
        new = invitations.create(session, user_id, actor)
    link = new.link(base_url)
    if channel is None or not new.email:
        return Sent(new.user_id, new.expires_at, link=link)
    subject, body = invitations.email_text(new, base_url)
    try:
        channel.send_text(new.email, subject, body)
    except DeliveryError as err:
        return Sent(new.user_id, new.expires_at, link=link, email_error=str(err))
    return Sent(new.user_id, new.expires_at, emailed_to=new.email)


def accept(
    sessions: sessionmaker[Session],
    token: str,
    password: str,
    max_age_seconds: int,
    actor: audit.Actor,
    browser: web_sign_in.Browser,
) -> web_sign_in.SignedIn:
    """Spend the invitation, set the password and open a web session, in one transaction."""
    with transaction(sessions) as session:
        user_id = invitations.accept(session, token, password, actor)
        user = session.get(User, user_id)
        assert user is not None
        return web_sign_in.start_session(session, user, "invitation", max_age_seconds, actor,
                                         browser)  # fmt: skip

"""Who a Grantflow user is in each Identity Center identity store (``directory_principals``).

A grant in an integration goes to the requester's principal in *that integration's* identity
store (``Integration.facts["identity_store_id"]``); a user has at most one principal per store.
The same rows tell which Grantflow users are one person: they share a principal or an email.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from grantflow.domain.identity_matching import (
    GrantflowUser,
    IdentityStoreUser,
    Matched,
    MatchedBy,
    MatchResult,
    link_principals,
    unlinked_reason,
)
from grantflow.services.audit import trail as audit
from grantflow.store.models import DirectoryPrincipal, Integration, User

IDENTITY_CENTER = "identity_center"


def store_of(integration: Integration | None) -> str | None:
    """The identity store of an integration, once its first sync discovered it."""
    store = (integration.facts or {}).get("identity_store_id") if integration else None
    return str(store) if store else None


def principal_in(session: Session, user_id: str, store: str | None) -> DirectoryPrincipal | None:
    """The user's principal in ``store`` (None without a store or a link)."""
    if not store:
        return None
    return session.scalars(
        select(DirectoryPrincipal).where(
            DirectoryPrincipal.identity_store_id == store, DirectoryPrincipal.user_id == user_id
        )
    ).first()


def grant_principal(
    session: Session, user: User, integration: Integration | None
) -> DirectoryPrincipal | None:
    """The active principal that grants of ``integration`` give ``user``, if there is one."""
    found = principal_in(session, user.id, store_of(integration))
    return found if found is not None and found.active else None


def principals_of(session: Session, user_id: str) -> list[DirectoryPrincipal]:
    """Every principal the user is, one per identity store, ordered by store."""
    return list(
        session.scalars(
            select(DirectoryPrincipal)
            .where(DirectoryPrincipal.user_id == user_id)
            .order_by(DirectoryPrincipal.identity_store_id)
        )
    )


def _email(value: str | None) -> str | None:
    text = (value or "").strip().casefold()
    return text or None


def person_keys(session: Session, user: User) -> frozenset[str]:
    """What makes a Grantflow user one person: its id, every principal it is (by store), its
    email and the emails of those principals. Two users that share a key are treated as one
    person for approvals."""
    keys = {f"user:{user.id}"}
    emails = {_email(user.email)}
    for row in principals_of(session, user.id):
        keys.add(f"principal:{row.identity_store_id}/{row.principal_id}")
        emails.add(_email(row.email))
    keys.update(f"email:{email}" for email in emails if email is not None)
    return frozenset(keys)


def _among(session: Session, column: Any, ids: list[str]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL ``= ANY(:ids)``, one array parameter (an IN list of
    the ~400 requesters of a "to approve" scan was rendered and parsed anew: ~2 ms each)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(String)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


def person_keys_of(session: Session, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """``person_keys`` of many users in two queries (list pages); unknown ids are left out."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    keys: dict[str, set[str]] = {}
    emails: dict[str, set[str | None]] = {}
    users = select(User.id, User.email).where(_among(session, User.id, ids))
    for uid, email in session.execute(users):
        keys[uid], emails[uid] = {f"user:{uid}"}, {_email(email)}
    found = select(DirectoryPrincipal.user_id, DirectoryPrincipal.identity_store_id,
                   DirectoryPrincipal.principal_id, DirectoryPrincipal.email)  # fmt: skip
    for owner, store, pid, email in session.execute(
        found.where(_among(session, DirectoryPrincipal.user_id, ids))
    ):
        if owner in keys:
            keys[owner].add(f"principal:{store}/{pid}")
            emails[owner].add(_email(email))
    for uid, mails in emails.items():
        keys[uid].update(f"email:{email}" for email in mails if email is not None)
    return {uid: frozenset(k) for uid, k in keys.items()}


def same_person(session: Session, a: User, b: User) -> bool:
    """Whether two users are one person: the same row, a shared principal or a shared email."""
    return a.id == b.id or bool(person_keys(session, a) & person_keys(session, b))


def people(session: Session, user_ids: Iterable[str]) -> dict[str, str]:
    """Group users into persons: user id -> the id of the first user of its person (in the
    order given). Users that share a principal or an email, directly or through others,
    are one person."""
    ordered = list(dict.fromkeys(user_ids))
    person: dict[str, str] = {}
    owner_of_key: dict[str, str] = {}
    for uid in ordered:
        user = session.get(User, uid)
        keys = person_keys(session, user) if user is not None else frozenset({f"user:{uid}"})
        roots = {person[owner_of_key[k]] for k in keys if k in owner_of_key}
        root = min(roots, key=ordered.index) if roots else uid
        for other, their in person.items():
            if their in roots:
                person[other] = root
        person[uid] = root
        for key in keys:
            owner_of_key.setdefault(key, uid)
    return person


# --- linking principals to users ----------------------------------------------------------


def stores(session: Session) -> list[str]:
    """Every identity store Grantflow holds principals of."""
    return sorted(set(session.scalars(select(DirectoryPrincipal.identity_store_id).distinct())))


def store_principals(session: Session, store: str) -> list[DirectoryPrincipal]:
    return list(
        session.scalars(
            select(DirectoryPrincipal)
            .where(DirectoryPrincipal.identity_store_id == store)
            .order_by(DirectoryPrincipal.principal_id)
        )
    )


def _as_store_user(row: DirectoryPrincipal) -> IdentityStoreUser:
    return IdentityStoreUser(row.principal_id, row.user_name, row.email)


def _live_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.deleted_at.is_(None)).order_by(User.id)))


def _owned(rows: list[DirectoryPrincipal], users: dict[str, User], store: str) -> dict[str, str]:
    """principal id -> the user the store created for it (still alive, still the store's)."""
    owned: dict[str, str] = {}
    for row in rows:
        user = users.get(row.user_id or "")
        if row.matched_by != MatchedBy.OWNER.value or user is None:
            continue
        if user.source == IDENTITY_CENTER and user.directory == store:
            owned[row.principal_id] = user.id
    return owned


def _adopt(links: dict[str, Matched], users: dict[str, User], store: str) -> dict[str, Matched]:
    """A matched identity_center user of this store (or a legacy one of no store) is the
    store's own: the link becomes an owner link and the user's directory the store."""
    adopted = dict(links)
    for pid, link in links.items():
        user = users[link.user_id]
        ours = user.source == IDENTITY_CENTER and user.directory in (store, "")
        if link.matched_by is not MatchedBy.OWNER and ours:
            user.directory = store
            adopted[pid] = Matched(user.id, pid, MatchedBy.OWNER)
    return adopted


def relink_store(session: Session, store: str, actor: audit.Actor) -> dict[str, Matched]:
    """Link each principal of ``store`` to the Grantflow user it is
    (``domain.identity_matching.link_principals``); audited per change. Returns the links
    by principal id; principals missing from it are linked to nobody."""
    rows = store_principals(session, store)
    users = {u.id: u for u in _live_users(session)}
    grantflow = [GrantflowUser(u.id, u.username, u.email) for u in users.values()]
    links = link_principals(
        [_as_store_user(r) for r in rows], grantflow, _owned(rows, users, store)
    )
    links = _adopt(links, users, store)
    changed: list[tuple[DirectoryPrincipal, str | None]] = []
    for row in rows:
        link = links.get(row.principal_id)
        wanted = (link.user_id, link.matched_by.value) if link else (None, None)
        if (row.user_id, row.matched_by) != wanted:
            changed.append((row, row.user_id))
            row.user_id = None  # first free every moved user: one principal per store
    session.flush()
    for row, previous in changed:
        link = links.get(row.principal_id)
        row.user_id = link.user_id if link else None
        row.matched_by = link.matched_by.value if link else None
        data = {"identity_store_id": store, "principal_id": row.principal_id,
                "matched_by": row.matched_by}  # fmt: skip
        if previous and previous != row.user_id:
            audit.record(session, actor, "user.identity_unmapped", "user", previous, data)
        if row.user_id and previous != row.user_id:
            audit.record(session, actor, "user.identity_mapped", "user", row.user_id, data)
    session.flush()
    return links


def relink_all(session: Session, actor: audit.Actor) -> None:
    """Relink every store (a user was created or renamed, or its email changed)."""
    for store in stores(session):
        relink_store(session, store, actor)


def mapping_in(session: Session, user: User, store: str) -> MatchResult:
    """The user's principal in ``store``, or why it has none."""
    row = principal_in(session, user.id, store)
    if row is not None:
        return Matched(user.id, row.principal_id, MatchedBy(row.matched_by or "username"))
    return unlinked_reason(
        GrantflowUser(user.id, user.username, user.email),
        [_as_store_user(r) for r in store_principals(session, store)],
    )

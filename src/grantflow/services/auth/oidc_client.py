"""The OpenID Connect relying party: discovery, the authorization request, the code exchange
and ID token validation (authlib's OAuth 2.0 / OIDC rules, joserfc for JOSE, the project's
httpx for HTTP).

Errors (all ``ServiceError``):

OidcError               400  the sign-in itself is malformed or stale
├── OidcUnavailable     502  the issuer could not be reached or answered nonsense
└── OidcRejected        401  the issuer refused, or its ID token failed validation
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from grantflow.services.errors import ServiceError
from grantflow.settings import Settings

CALLBACK_PATH = "/auth/oidc/callback"
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                   "ES512", "EdDSA")  # fmt: skip
CLOCK_LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 3600
JWKS_MIN_REFRESH_SECONDS = 30


class OidcError(ServiceError):
    status = 400
    code = "oidc_error"


class OidcUnavailable(OidcError):
    status = 502
    code = "oidc_unavailable"


class OidcRejected(OidcError):
    status = 401
    code = "oidc_rejected"


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    redirect_uri: str
    auto_create: bool
    require_verified_email: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration, or None when single sign-on is not set up."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id:
            raise ValueError("GRANTFLOW_OIDC_CLIENT_ID is required with GRANTFLOW_OIDC_ISSUER")
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scopes=settings.oidc_scopes,
            redirect_uri=settings.base_url.rstrip("/") + CALLBACK_PATH,
            auto_create=settings.oidc_auto_create,
            require_verified_email=settings.oidc_require_verified_email,
        )


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def _metadata_from(doc: dict[str, Any], issuer: str) -> ProviderMetadata:
    if doc.get("issuer") != issuer:
        raise OidcUnavailable(
            f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}; "
            "set GRANTFLOW_OIDC_ISSUER to the issuer exactly as the provider spells it"
        )
    required = ("authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [k for k in required if not doc.get(k)]
    if missing:
        raise OidcUnavailable(f"the discovery document lacks {', '.join(missing)}")
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in offered if a in ASYMMETRIC_ALGS)
    if not algorithms:
        raise OidcUnavailable(f"the issuer signs ID tokens only with {offered}; need RS256 etc.")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=str(doc["authorization_endpoint"]),
        token_endpoint=str(doc["token_endpoint"]),
        jwks_uri=str(doc["jwks_uri"]),
        algorithms=algorithms,
        token_auth_methods=tuple(
            doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        ),
    )


class OidcClient:
    """One per app: caches the discovery document and the issuer's keys (thread-safe)."""

    def __init__(self, config: OidcConfig, *, timeout_seconds: float = 10.0) -> None:
        self.config = config
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self._timeout) as http:
                response = http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                doc = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise OidcUnavailable(f"cannot fetch the issuer's {what} from {url}: {err}") from err
        if not isinstance(doc, dict):
            raise OidcUnavailable(f"the issuer's {what} at {url} is not a JSON object")
        return doc

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            fresh = time.monotonic() - self._metadata_at < METADATA_TTL_SECONDS
            if self._metadata is not None and fresh:
                return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = _metadata_from(self._get_json(url, "discovery document"), self.config.issuer)
        with self._lock:
            self._metadata, self._metadata_at = metadata, time.monotonic()
        return metadata

    def _key_set(self, *, refresh: bool) -> KeySet:
        with self._lock:
            recent = time.monotonic() - self._keys_at < JWKS_MIN_REFRESH_SECONDS
            if self._keys is not None and (not refresh or recent):
                return self._keys
        doc = self._get_json(self.metadata().jwks_uri, "signing keys (JWKS)")
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as err:
            raise OidcUnavailable(f"the issuer's JWKS is not usable: {err}") from err
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    def begin(self) -> AuthorizationRequest:
        """A fresh authorization request: state, nonce and a PKCE (S256) verifier of its own."""
        metadata = self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=self.config.redirect_uri,
            scope=self.config.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return AuthorizationRequest(str(url), state, nonce, verifier)

    def _token_request(
        self, metadata: ProviderMetadata, code: str, code_verifier: str
    ) -> tuple[dict[str, str], httpx.Auth]:
        """The token request's form and HTTP Basic credentials, per the client's auth method."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": code_verifier,
        }
        secret = self.config.client_secret
        if secret is None:
            return {**form, "client_id": self.config.client_id}, httpx.Auth()
        if "client_secret_basic" in metadata.token_auth_methods:
            # RFC 6749 2.3.1: both parts form-encoded before Basic encoding
            return form, httpx.BasicAuth(
                quote(self.config.client_id, safe=""), quote(secret, safe="")
            )
        extra = {"client_id": self.config.client_id, "client_secret": secret}
        return {**form, **extra}, httpx.Auth()

    def finish(self, code: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange the code and return the validated ID token's claims."""
        metadata = self.metadata()
        form, auth = self._token_request(metadata, code, code_verifier)
        try:
            with httpx.Client(timeout=self._timeout) as http:
                response = http.post(
                    metadata.token_endpoint,
                    data=form,
                    auth=auth,
                    headers={"Accept": "application/json"},
                )
            body = response.json()
        except httpx.HTTPError as err:
            raise OidcUnavailable(f"cannot reach the issuer's token endpoint: {err}") from err
        except ValueError as err:
            raise OidcUnavailable(
                f"the token endpoint answered {response.status_code} without JSON"
            ) from err
        if not isinstance(body, dict):
            raise OidcUnavailable("the token endpoint answered something other than an object")
        if response.status_code != httpx.codes.OK or "error" in body:
            if "error" not in body:
                raise OidcUnavailable(f"the token endpoint answered {response.status_code}")
            detail = f"{body.get('error')} {body.get('error_description') or ''}".strip()
            raise OidcRejected(f"the identity provider refused the code: {detail}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRejected("the identity provider returned no ID token (is 'openid' a scope?)")
        access_token = body.get("access_token")
        return self.validate_id_token(
            id_token, nonce, access_token if isinstance(access_token, str) else None
        )

    def validate_id_token(
        self, id_token: str, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """Signature (issuer's JWKS, asymmetric algorithms only), iss, aud, azp, exp, iat, nonce
        and at_hash."""
        metadata = self.metadata()
        registry = JWSRegistry(algorithms=list(metadata.algorithms), strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(refresh=False), registry=registry)
            except InvalidKeyIdError:  # the issuer may have rotated its keys
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata.issuer},
                    "aud": {"essential": True, "values": [self.config.client_id]},
                    "sub": {"essential": True},
                    "exp": {"essential": True},
                },
                params,
            )
            claims.validate(leeway=CLOCK_LEEWAY_SECONDS)
        except (JoseError, ValueError) as err:
            raise OidcRejected(f"the ID token is not valid: {_describe(err)}") from err
        return dict(claims)


def _describe(err: Exception) -> str:
    name = type(err).__name__
    detail = str(err) or getattr(err, "description", "") or ""
    return f"{name}: {detail}" if detail else name

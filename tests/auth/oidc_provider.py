"""A real OpenID Connect provider for tests, built with authlib's authorization server.

Authorization code flow with PKCE (S256, required), ID tokens signed RS256 with a key it
publishes in its JWKS, a discovery document, and a userinfo endpoint. It is served by uvicorn
on a free 127.0.0.1 port from a thread, so the app under test reaches it over real HTTP.

There is no login form: ``/authorize`` signs in whoever ``provider.identity`` names and
redirects straight back. Knobs for negative tests: ``nonce_override`` (emit another nonce) and
``sign_with_impostor`` (sign with a key of the same kid that the JWKS does not publish).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID = "grantflow-test"
CLIENT_SECRET = "grantflow-test-secret"
KID = "test-key-1"


@dataclass
class Identity:
    sub: str
    email: str | None = None
    email_verified: bool | None = True
    preferred_username: str | None = None
    name: str = "Test Person"


@dataclass
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in {"openid", "email", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    identity: Identity
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from an already-read Starlette request."""

    def __init__(self, method: str, uri: str, headers: Headers, data: dict[str, str]):
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


class OidcTestProvider:
    def __init__(self) -> None:
        self.issuer = ""
        self.redirect_uris: list[str] = []
        self.identity = Identity(sub="sub-unset")
        self.nonce_override: str | None = None
        self.sign_with_impostor = False
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"}, private=True)
        self.impostor = RSAKey.generate_key(
            2048, parameters={"kid": KID, "use": "sig"}, private=True
        )
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, Identity] = {}
        self.token_requests = 0
        self.server = self._build_server()

    # -- authlib wiring ---------------------------------------------------------------

    def _build_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> RegisteredClient | None:
                if client_id != CLIENT_ID:
                    return None
                return RegisteredClient(CLIENT_ID, CLIENT_SECRET, provider.redirect_uris)

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                provider.tokens[token["access_token"]] = request.user

            def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
                return request

            def handle_response(
                self, status: int, body: Any, headers: list[tuple[str, str]]
            ) -> Response:
                if isinstance(body, dict):
                    return JSONResponse(body, status_code=status, headers=dict(headers))
                return Response(body, status_code=status, headers=dict(headers))

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                provider.codes[code] = AuthCode(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=request.payload.redirect_uri,
                    scope=request.scope,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    identity=request.user,
                )

            def query_authorization_code(
                self, code: str, client: RegisteredClient
            ) -> AuthCode | None:
                item = provider.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthCode) -> Identity:
                return authorization_code.identity

        class OpenID(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: RegisteredClient) -> RSAKey:
                return provider.impostor if provider.sign_with_impostor else provider.key

            def get_client_algorithm(self, client: RegisteredClient) -> str:
                return "RS256"

            def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
                return {"alg": "RS256", "kid": KID}

            def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_authorization_code_claims(self, code: AuthCode) -> dict[str, Any]:
                claims: dict[str, Any] = super().get_authorization_code_claims(code)
                if provider.nonce_override is not None:
                    claims["nonce"] = provider.nonce_override
                return claims

            def generate_user_info(self, user: Identity, scope: str) -> dict[str, Any]:
                return provider.claims_for(user, scope)

        server = Server()
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(32))
        )
        server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
        return server

    def claims_for(self, user: Identity, scope: str) -> dict[str, Any]:
        scopes = scope.split()
        info: dict[str, Any] = {"sub": user.sub}
        if "email" in scopes and user.email is not None:
            info["email"] = user.email
            if user.email_verified is not None:
                info["email_verified"] = user.email_verified
        if "profile" in scopes:
            info["name"] = user.name
            if user.preferred_username is not None:
                info["preferred_username"] = user.preferred_username
        return info

    # -- HTTP endpoints -----------------------------------------------------------------

    async def discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        oauth = _Request("GET", str(request.url), request.headers, dict(request.query_params))
        try:
            grant = self.server.get_consent_grant(oauth, end_user=self.identity)
        except OAuth2Error as error:
            return JSONResponse(dict(error.get_body()), status_code=error.status_code)
        response: Response = self.server.create_authorization_response(
            oauth, grant_user=self.identity, grant=grant
        )
        return response

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: str(v) for k, v in (await request.form()).items()}
        oauth = _Request("POST", str(request.url), request.headers, form)
        response: Response = self.server.create_token_response(oauth)
        return response

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self.claims_for(user, "openid email profile"))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )


@contextmanager
def serve_provider() -> Iterator[OidcTestProvider]:
    """The provider on a free loopback port, for the duration of the block."""
    provider = OidcTestProvider()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(provider.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test OIDC provider did not start")
        time.sleep(0.02)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

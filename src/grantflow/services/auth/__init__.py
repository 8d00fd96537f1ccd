"""Signing in and credentials: API tokens, sessions, passwords, OIDC, device login."""

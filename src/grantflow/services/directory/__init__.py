"""Keeping people in sync: SCIM, Identity Center identity stores, invitations, user lifecycle."""

"""Access flows, requests and grants: who may request what, approvals, granting, revoking."""

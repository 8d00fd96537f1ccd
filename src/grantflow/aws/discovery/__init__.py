"""Discovery of member-account resources: one module per resource family (see ``scope``)."""

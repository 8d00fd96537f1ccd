"""The API's request and response shapes, one family per capability.

A family follows one naming pattern: ``XBase`` (the fields every view shares), ``XCreate`` and
``XUpdate`` (what a client writes), ``XPublic`` (what a client reads), and an extension of
``XPublic`` only where one view genuinely shows more. Fields that carry a state or a kind are
typed with the domain's enum, so the OpenAPI document lists the values.
"""

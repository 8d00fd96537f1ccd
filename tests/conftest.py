pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.db",
    "tests.fixtures.api",
    "tests.fixtures.org",
    "tests.fixtures.live",
]

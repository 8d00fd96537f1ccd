"""bench/list_pages.py keeps working: its quick mode builds a small world and times every
list page through the real app, on both backends."""

from __future__ import annotations

from bench.list_pages import main, run


def test_the_list_pages_benchmark_runs_in_quick_mode(db_url: str) -> None:
    rows = run(db_url, seed=3, quick=True, samples=2)
    names = [name for name, _, _ in rows]
    assert names[:3] == ["to approve", "my requests", "all requests (admin)"]
    assert any(n.startswith("resources") for n in names)
    assert any(n.startswith("audit") for n in names)
    assert all(0 < p50 <= p95 for _, p50, p95 in rows)


def test_main_prints_a_table() -> None:
    lines: list[str] = []
    main(["--backend", "sqlite", "--quick", "--samples", "1", "--seed", "2"], out=lines.append)
    table = "\n".join(lines)
    assert "| to approve |" in table and "sqlite p50 / p95 ms" in table

"""bench/eligibility.py keeps working: its quick world on each backend, through the real
ingest and the real app, and its answer is the pure rule's (``domain.flows.in_scope``)."""

from __future__ import annotations

from bench.eligibility import Size, report, run_backend


def test_the_eligibility_bench_runs_and_agrees_with_the_pure_rule(
    db_url: str, capsys: object
) -> None:
    figures = run_backend(db_url, seed=3, size=Size.quick(), check=True)
    assert [name.split(" ")[1] for name, *_ in figures.rows] == [
        "first", "search", "type=ec2-instance", "deep",
    ]  # fmt: skip
    assert all(p50 > 0 and p95 >= p50 for _, p50, p95, _ in figures.rows)
    assert figures.totals["first page"] > 0
    assert figures.expected_total == figures.totals["after re-sync"]
    costs = {name for name, *_ in figures.costs}
    assert {"initial sync (ingest)", "re-sync (ingest)", "flow edit (PATCH)"} <= costs
    report("quick", figures, "skipped")

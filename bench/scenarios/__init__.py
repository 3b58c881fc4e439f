"""One module per scenario of issue 5; each exposes `async def run(ctx) -> dict`
returning a section of the report (see bench/report.py for its shape)."""

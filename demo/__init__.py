"""The quick-start demo: ``python -m demo`` (or ``./scripts/demo``)."""

"""Renders a run database into a self-contained HTML report, and JUnit XML."""

"""Term-structure research series over the warehouse (no Dagster import here)."""

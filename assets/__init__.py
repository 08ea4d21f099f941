"""Dagster resources, assets and asset checks of termstore, and the charts they and the CLI show.

Importing the package imports nothing heavy: ``assets.charts`` serves the CLI without Dagster.
"""

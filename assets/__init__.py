"""Dagster assets and asset checks of termstore."""

import warnings

import dagster as dg

# BackfillPolicy is beta in Dagster 1.13; batched backfills are worth it, the warning is not.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

"""Figures that summarise results for a person: :func:`events_overview`."""

from cascope.report.overview import events_overview

__all__ = ["events_overview"]

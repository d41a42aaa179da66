"""Reports a person reads: figures and one offline HTML page per run and per study.

:func:`build_report` writes ``report.html`` (and its ``report_files/``) into a ``cascope run``
folder or a ``cascope study`` folder; :func:`events_overview` is the run's one-page figure;
:func:`compare_report` writes a condition comparison's tables and figures into a folder.
"""

from cascope.report.build import build_report
from cascope.report.comparison import compare_report
from cascope.report.overview import events_overview
from cascope.report.run import build_run_report
from cascope.report.study import build_study_report

__all__ = [
    "build_report",
    "build_run_report",
    "build_study_report",
    "compare_report",
    "events_overview",
]

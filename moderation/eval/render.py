"""The evaluation report as rich tables."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from moderation.eval.metrics import (
    TARGET_ABUSE_RECALL,
    TARGET_BENIGN_FPR,
    TARGET_THREAT_RECALL,
    TARGET_THROUGHPUT,
    ModelReport,
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _verdict(passed: bool) -> Text:
    return Text("met", style="green") if passed else Text("missed", style="bold red")


def category_table(report: ModelReport) -> Table:
    table = Table(
        title=f"{report.model} {report.version} on {report.dataset}", title_justify="left"
    )
    for column in ("category", "messages", "flagged", "precision", "recall", "FPR", "caught"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, counts in report.categories.items():
        table.add_row(
            name,
            str(counts.messages),
            str(counts.flagged),
            _percent(counts.precision),
            _percent(counts.recall),
            _percent(counts.false_positive_rate),
            _percent(counts.message_recall),
        )
    return table


def label_table(report: ModelReport) -> Table:
    table = Table(title="per label", title_justify="left")
    for column in ("label", "expected", "precision", "recall"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for name in sorted(report.labels):
        counts = report.labels[name]
        table.add_row(
            name, str(counts.expected), _percent(counts.precision), _percent(counts.recall)
        )
    return table


def goal_table(report: ModelReport) -> Table:
    table = Table(title="goals", title_justify="left")
    for column in ("goal", "target", "measured", ""):
        table.add_column(column)
    fpr, recall = report.benign.false_positive_rate, report.abusive.message_recall
    table.add_row(
        "false positives on clinical + everyday",
        f"<= {TARGET_BENIGN_FPR:.0%}",
        f"{_percent(fpr)} ({report.benign.flagged}/{report.benign.messages})",
        _verdict(fpr is not None and fpr <= TARGET_BENIGN_FPR),
    )
    table.add_row(
        "recall on insult, threat, harassment, obfuscated",
        f">= {TARGET_ABUSE_RECALL:.0%}",
        f"{_percent(recall)} ({report.abusive.caught}/{report.abusive.expected})",
        _verdict(recall is not None and recall >= TARGET_ABUSE_RECALL),
    )
    threats = report.threats.message_recall
    if threats is not None:
        table.add_row(
            "recall on threats (every grammatical form)",
            f">= {TARGET_THREAT_RECALL:.0%}",
            f"{_percent(threats)} ({report.threats.caught}/{report.threats.expected})",
            _verdict(threats >= TARGET_THREAT_RECALL),
        )
    if report.throughput is not None:
        table.add_row(
            "messages/s on one core, batches of 10,000",
            f">= {TARGET_THROUGHPUT:,.0f}",
            f"{report.throughput:,.0f}",
            _verdict(report.throughput >= TARGET_THROUGHPUT),
        )
    return table


def confusion_table(report: ModelReport) -> Table:
    """Benign (clinical, everyday ...) against abusive messages: passed or flagged."""
    table = Table(title="clinical and everyday vs abusive", title_justify="left")
    for column in ("actual", "passed", "flagged"):
        table.add_column(column, justify="left" if column == "actual" else "right")
    for name, counts in (("benign", report.benign), ("abusive", report.abusive)):
        table.add_row(name, str(counts.messages - counts.flagged), str(counts.flagged))
    return table


def misses_table(report: ModelReport) -> Table:
    table = Table(title="misses", title_justify="left")
    for column in ("category", "expected", "flagged", "text"):
        table.add_column(column, overflow="fold")
    for miss in report.misses:
        flagged = ", ".join(f"{label} {score:.2f}" for label, score in miss.flagged.items())
        table.add_row(
            miss.example.category,
            ", ".join(sorted(miss.example.labels)),
            flagged,
            miss.example.text,
        )
    return table


def render(report: ModelReport, *, show_misses: bool = False) -> RenderableType:
    """Categories, labels and goals of one report (and its misses when asked)."""
    parts: list[RenderableType] = [
        category_table(report),
        label_table(report),
        confusion_table(report),
        goal_table(report),
    ]
    if show_misses and report.misses:
        parts.append(misses_table(report))
    return Group(*parts)

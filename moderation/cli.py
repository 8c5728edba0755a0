"""`pawhub moderation ...`: the `moderation` click group (wired into `pawhub.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from moderation.eval.dataset import SHIPPED_SETS, load_examples, shipped_set
from moderation.eval.metrics import ModelReport, evaluate, measure_throughput
from moderation.eval.render import render
from moderation.factory import load_classifier
from moderation.thresholds import Thresholds


@click.group()
def moderation() -> None:
    """Live moderation: scoring workers and the quality report."""


@moderation.command("eval")
@click.option(
    "--data",
    "datasets",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSONL set(s); default: the shipped development and holdout sets.",
)
@click.option(
    "--detoxify-checkpoint",
    envvar="DETOXIFY_CHECKPOINT",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also evaluate this Detoxify checkpoint.",
)
@click.option(
    "--detoxify-config-dir",
    envvar="DETOXIFY_CONFIG_DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Its config.json and tokenizer files; default: the checkpoint's folder.",
)
@click.option("--batch-size", default=10_000, show_default=True, help="Throughput batch size.")
@click.option("--no-throughput", is_flag=True, help="Skip the throughput measurement.")
@click.option("--show-misses", is_flag=True, help="List the messages each model got wrong.")
@click.option("--check", is_flag=True, help="Exit with status 1 when a model misses a goal.")
def eval_command(
    datasets: tuple[Path, ...],
    detoxify_checkpoint: Path | None,
    detoxify_config_dir: Path | None,
    batch_size: int,
    no_throughput: bool,
    show_misses: bool,
    check: bool,
) -> None:
    """Precision, recall and false-positive rate per category and model, and throughput."""
    console = Console()
    paths = datasets or tuple(shipped_set(name) for name in SHIPPED_SETS)
    classifiers = [load_classifier(None)]
    if detoxify_checkpoint:
        classifiers.append(load_classifier(detoxify_checkpoint, detoxify_config_dir))
    reports: list[ModelReport] = []
    for classifier in classifiers:
        for index, path in enumerate(paths):
            examples = load_examples(path)
            report = evaluate(classifier, examples, Thresholds(), path.name)
            if index == 0 and not no_throughput:
                texts = [example.text for example in examples]
                report.throughput = measure_throughput(classifier, texts, batch_size)
            console.print(render(report, show_misses=show_misses))
            console.print()
            reports.append(report)
    if check and not all(report.goals_met for report in reports):
        sys.exit(1)

"""`pawhub moderation ...`: the `moderation` click group (wired into `pawhub.cli`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from moderation.classifier import Classifier
from moderation.eval.dataset import SHIPPED_SETS, corpus_split, load_examples, shipped_set
from moderation.eval.metrics import ModelReport, evaluate, measure_throughput
from moderation.eval.render import render
from moderation.factory import load_classifier
from moderation.thresholds import Thresholds

DEFAULT_PLOTS = Path("bench/results/moderation")


@click.group()
def moderation() -> None:
    """Live moderation: scoring workers, training and the quality report."""


@moderation.command("train")
@click.option(
    "--corpus",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with train.jsonl, dev.jsonl and test.jsonl; default: the shipped corpus.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the model; default: the package's moderation/model/.",
)
def train_command(corpus: Path | None, output: Path | None) -> None:
    """Fit the default model on the corpus's train split, calibrate it on dev, write it."""
    from moderation.corpus import CORPUS_DIR
    from moderation.learned_model import MODEL_DIR
    from moderation.training import train

    started = time.perf_counter()
    artefact = train(corpus or CORPUS_DIR)
    digest = artefact.save(output or MODEL_DIR)
    meta = artefact.meta
    click.echo(
        f"{meta['model']} {meta['version']}: {meta['training_messages']} training messages, "
        f"{len(artefact.word_vocabulary) + len(artefact.char_vocabulary)} n-grams, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    click.echo(
        f"dev: {meta['dev_false_positive_rate']:.1%} of benign messages flagged, "
        f"{meta['dev_abuse_recall']:.1%} of abusive ones caught"
    )
    thresholds = ", ".join(f"{label} {value:.3f}" for label, value in artefact.calibrated.items())
    click.echo(f"calibrated thresholds: {thresholds}")
    click.echo(f"sha256 {digest} (corpus {meta['corpus_sha256'][:12]})")


@moderation.command("eval")
@click.option(
    "--data",
    "datasets",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled JSONL set(s); default: the corpus's test split, then the older sets.",
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
@click.option("--baseline", is_flag=True, help="Also evaluate the rules model (vet-profanity).")
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PLOTS,
    show_default=True,
    help="Folder for the precision/recall curves (PNG, one per label and set).",
)
@click.option("--batch-size", default=10_000, show_default=True, help="Throughput batch size.")
@click.option("--no-throughput", is_flag=True, help="Skip the throughput measurement.")
@click.option("--show-misses", is_flag=True, help="List the messages each model got wrong.")
@click.option("--check", is_flag=True, help="Exit with status 1 when a model misses a goal.")
def eval_command(
    datasets: tuple[Path, ...],
    detoxify_checkpoint: Path | None,
    detoxify_config_dir: Path | None,
    baseline: bool,
    plots: Path,
    batch_size: int,
    no_throughput: bool,
    show_misses: bool,
    check: bool,
) -> None:
    """Precision, recall and false-positive rate per category and model, the confusion of
    benign and abusive messages, precision/recall curves, and throughput."""
    from moderation.eval.plot import plot_precision_recall

    console = Console()
    paths = datasets or (corpus_split("test"), *(shipped_set(name) for name in SHIPPED_SETS))
    classifiers: list[Classifier] = [load_classifier(None)]
    if baseline:
        from moderation.default_model import VetProfanityClassifier

        classifiers.append(VetProfanityClassifier())
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
            written = plot_precision_recall(report, plots)
            console.print(f"precision/recall curves: {', '.join(map(str, written))}")
            console.print()
            reports.append(report)
    if check and not all(report.goals_met for report in reports):
        sys.exit(1)

"""`bouncetag train` (GTZAN + your labels, safe promotion, schedule) and `bouncetag model`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bouncetag.commands import Context
from bouncetag.errors import ModelMissingError, TrainingError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the genre model on GTZAN and your labels",
        description="Train the genre head on your labels (and GTZAN with --gtzan). The new model "
        "becomes current only if its macro-F1 on held-out data is no worse than the current "
        "model's (or with --force). Old models are kept: `bouncetag model list|use`.",
    )
    p.add_argument("--gtzan", type=Path, metavar="DIR",
                   help="a GTZAN folder (genres/ or Kaggle's genres_original/); you download it")
    p.add_argument("--gtzan-split", choices=("filtered", "random"), default="filtered",
                   help="artist-filtered split (default, honest) or random (overstates accuracy)")
    p.add_argument("--features", metavar="SET",
                   help="all | audio | text | a comma list of extractors (default: [train] "
                   "features in the config)")
    p.add_argument("--report-test", action="store_true",
                   help="also report the GTZAN test split (keep it for final figures only)")
    p.add_argument("--force", action="store_true",
                   help="make the new model current even if it scores worse")
    p.add_argument("--schedule", metavar="CRON",
                   help="stay running and retrain on this cron schedule when new data arrived, "
                   'e.g. "0 3 * * *"')
    p.add_argument("--finetune-bert", action="store_true",
                   help="also fine-tune MiniLM on the training transcripts (vocal tracks) and "
                   "use it for the bert features; saved as <model>/bert, analyze uses it")
    p.add_argument("--finetune-epochs", type=int, metavar="N",
                   help="epochs of BERT fine-tuning (default 3; the best on valid is kept)")
    p.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (early stopping)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="processes for feature extraction (default: all cores)")
    p.add_argument("--no-ablation", action="store_true",
                   help="skip the audio/text/all ablation in the report")
    p.set_defaults(handler=run_train)

    m = subparsers.add_parser("model", help="list genre models or switch to another version")
    actions = m.add_subparsers(dest="model_action", metavar="ACTION")
    actions.add_parser("list", help="installed models, the current one marked")
    use = actions.add_parser("use", help="make VERSION current (roll back or forward)")
    use.add_argument("version", metavar="VERSION")
    m.set_defaults(handler=run_model)


def _options(ctx: Context, args: argparse.Namespace):  # -> TrainOptions
    from bouncetag.trainer.train import TrainOptions

    if args.epochs is not None and args.epochs < 1:
        raise TrainingError("--epochs must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise TrainingError("--jobs must be at least 1")
    finetune = args.finetune_bert or ctx.config.train.finetune_bert
    if args.finetune_epochs is not None and (args.finetune_epochs < 1 or not finetune):
        raise TrainingError("--finetune-epochs needs --finetune-bert and must be at least 1")
    return TrainOptions.from_config(
        ctx.config.train,
        gtzan=args.gtzan.expanduser() if args.gtzan else None,
        gtzan_split=args.gtzan_split, features=args.features, report_test=args.report_test,
        force=args.force, epochs=args.epochs, jobs=args.jobs,
        ablation=not args.no_ablation, finetune_bert=args.finetune_bert or None,
        finetune_epochs=args.finetune_epochs,
    )


def run_train(ctx: Context, args: argparse.Namespace) -> int:
    from bouncetag.trainer.evaluate import render_report
    from bouncetag.trainer.train import run_training

    options = _options(ctx, args)
    if args.schedule:
        return _run_schedule(ctx, args.schedule, options)
    ctx.paths.ensure()
    result = run_training(ctx.paths, ctx.config, options, console=ctx.err_console)
    render_report(result.report, ctx.console)
    ft = result.finetuned_bert
    if ft is not None:
        last = ft["history"][ft["best_epoch"] - 1] if ft["history"] else {}
        valid = (f", valid macro-F1 {last['valid_macro_f1']:.3f} on {ft['n_valid']} transcripts"
                 if "valid_macro_f1" in last else " (no validation transcripts: last epoch)")
        ctx.console.print(
            f"BERT fine-tuned on {ft['n_train']} transcripts in {ft['seconds']:.0f} s: "
            f"epoch {ft['best_epoch']}/{ft['epochs_run']} kept{valid}; saved in "
            f"{result.model_dir / 'bert'}", highlight=False,
        )
    ctx.console.print(f"model {result.version} saved in {result.model_dir}", highlight=False)
    ctx.console.print(
        f"report: {result.model_dir / 'report.json'} (+ confusion_*.png)", highlight=False
    )
    colour = "green" if result.promoted else "yellow"
    verdict = "now current" if result.promoted else "not promoted"
    ctx.console.print(f"[{colour}]{verdict}[/]: {result.reason}", highlight=False)
    return 0


def _run_schedule(ctx: Context, cron: str, options) -> int:
    import threading

    from bouncetag.trainer.schedule import ScheduleResult, TrainScheduler

    def report(outcome: ScheduleResult) -> None:
        ctx.console.print(f"scheduled run: {outcome.message}", highlight=False)
        ctx.console.print(f"next run: {scheduler.next_run_time}", highlight=False)

    scheduler = TrainScheduler(ctx.paths, ctx.config, cron=cron, options=options, on_result=report)
    scheduler.start()
    ctx.console.print(f"retraining on schedule {cron!r}; next run: {scheduler.next_run_time} "
                      "(Ctrl-C to stop)", highlight=False)
    try:
        threading.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
    return 0  # pragma: no cover - only Ctrl-C ends the wait


def run_model(ctx: Context, args: argparse.Namespace) -> int:
    import time

    from rich.table import Table

    from bouncetag import registry

    if args.model_action == "use":
        folder = registry.use_model(ctx.paths, args.version)
        ctx.console.print(f"current genre model: {args.version} ({folder})", highlight=False)
        if ctx.config.genre.model:
            ctx.err_console.print(
                f"note: genre.model = {ctx.config.genre.model!r} in your config overrides this"
            )
        return 0
    models = registry.list_models(ctx.paths)
    if not models:
        ctx.console.print("no genre models yet: run `bouncetag train`")
        return 0
    table = Table(title=f"genre models in {ctx.paths.models_dir}")
    table.add_column("")
    table.add_column("version", no_wrap=True)
    for col in ("created", "labels", "features", "valid macro-F1", "promoted"):
        table.add_column(col)
    from bouncetag.classifier.model import read_meta

    for m in models:
        valid = m.metrics.get("valid", {})
        try:
            tuned = bool(read_meta(m.path).finetuned_bert)
        except ModelMissingError:  # removed since listing: show it as it was listed
            tuned = False
        features = ",".join(n + ("(fine-tuned)" if tuned and n == "bert" else "")
                            for n in m.feature_names)
        f1 = f"{valid['macro_f1']:.3f} (n={valid.get('n', '?')})" if "macro_f1" in valid else "-"
        table.add_row(
            "*" if m.current else "", m.version,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created_at)),
            ", ".join(m.labels), features, f1, "yes" if m.promoted else "no",
        )
    ctx.console.print(table)
    return 0

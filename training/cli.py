"""Command line: `python -m training train|evaluate|recalibrate|versions|rollback|prune ...` (also
installed as `vae-train`). Its options are in training/arguments.py; here, what each command does."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from training.arguments import build_parser
from training.calibration import CalibrationError
from training.config import TrainConfig
from training.data import DataError
from training.report_page import REPORT_PAGE
from training.stopping import Stopped, stoppable
from training.store import REPORT_PATH, short_of_space
from training.writable import DiskFull, FolderNotWritable, check_writable, said_when_full

log = logging.getLogger(__name__)


class _UsageError(Exception):
    pass


def _version_dir(args) -> Path:
    """--model, else the latest published version of --name in --store."""
    from training.store import METADATA_PATH, list_versions

    version_dir = args.model
    if version_dir is None:
        versions = list_versions(args.store / args.name)
        if not versions:
            raise _UsageError(f"no published version in {args.store / args.name}")
        version_dir = args.store / args.name / str(versions[-1])
    missing = [name for name in ("saved_model.pb", str(METADATA_PATH)) if not (version_dir / name).is_file()]
    if missing:
        # A model's own folder is the likeliest slip (model_store/mnist-vae for model_store/mnist-vae/4)
        versions = list_versions(version_dir)
        hint = (f"; it is a model's folder: give one of its versions, {', '.join(map(str, versions))} "
                f"(the latest is {version_dir / str(versions[-1])})" if versions else "")
        raise _UsageError(f"{version_dir} is not a model version folder (no {' or '.join(missing)}){hint}")
    return version_dir


def _recalibrate(args) -> int:
    from training.recalibrate import recalibrate_and_publish
    from training.store import read_metadata

    if args.since is not None and args.until is not None and args.since >= args.until:
        raise _UsageError(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}, so no "
                          "result could match; did you swap them?")
    if args.results and args.even_if_flagged:
        raise _UsageError("--even-if-flagged applies to --images; the stored results need no such word, as a "
                          "person reviewed every flagged one used")
    version_dir = _version_dir(args)
    check_writable(version_dir.parent, "the model's folder")  # the new version goes beside the one it is made from
    source = read_metadata(version_dir)
    if args.every_source:
        return _recalibrate_every_source(args, version_dir, source)
    if args.results and args.for_source is not None:
        if args.source not in (None, args.for_source):
            raise _UsageError(f"--for-source {args.for_source} calibrates on that source's own results; "
                              f"--source {args.source} would select another's")
        args.source = args.for_source
    read_normals = _stored_normals if args.results else _folder_normals
    normals = read_normals(args, version_dir, source)
    published = recalibrate_and_publish(version_dir, normals, args.target_fpr, _test_set(args, version_dir, source),
                                        progress=True, for_source=args.for_source)
    metadata = published.metadata
    calibrated = metadata if args.for_source is None else metadata["source_calibrations"][args.for_source]
    summary = {"version": published.version, "path": str(published.path),
               "recalibrated_from": source["version"], "for_source": args.for_source,
               "n_images": len(normals.images), "score_method": metadata["score_method"],
               **_calibration_summary(calibrated), "test_metrics": _headline(metadata["test_metrics"]),
               "report": _report_page(published.path / REPORT_PATH)}
    print(json.dumps(summary, indent=1))
    return 0


def _recalibrate_every_source(args, version_dir: Path, source: dict) -> int:
    from training.calibration import minimum_calibration_size
    from training.data import fingerprint
    from training.recalibrate import NormalImages, recalibrate_sources_and_publish
    from training.stored_results import ResultWindow, load_stored_normals_by_source

    if not args.results:
        raise _UsageError("--every-source calibrates each source of the stored results; it applies with --results")
    for option in ("source", "for_source"):
        if getattr(args, option) is not None:
            raise _UsageError(f"--every-source calibrates every source in the window; leave out "
                              f"--{option.replace('_', '-')}")
    if args.invert and not args.test_normals:
        raise _UsageError("--invert applies to --images and the test folders; stored results are kept as the model "
                          "saw them")
    window = ResultWindow(source["name"], None, args.since, args.until)
    images_by_source, counts = load_stored_normals_by_source(args.results, window)
    _check_framing_of_scorers(counts["model_versions"], version_dir, source)
    own = source.get("source_calibrations") or {}
    normals, skipped = {}, {}
    for name, images in images_by_source.items():
        target_fpr = args.target_fpr or (own.get(name) or source)["target_fpr"]
        needed = minimum_calibration_size(target_fpr)
        if len(images) < needed:
            keeps = "its own threshold" if name in own else "the model's threshold"
            skipped[name] = (f"{len(images)} normal images, {needed} needed for a target FPR of {target_fpr:g}; "
                             f"keeps {keeps}")
            continue
        its_window = ResultWindow(source["name"], name, args.since, args.until)
        normals[name] = NormalImages(images, f"results store {args.results} ({its_window.describe()})",
                                     fingerprint(images), vouched_for=True)
    for name, why in skipped.items():
        log.warning("source %s: %s", name, why)
    if not normals:
        raise _UsageError(f"no source in the window ({window.describe()}) has enough normal images: "
                          + "; ".join(f"{name}: {why}" for name, why in skipped.items()))
    log.info("%d stored results (%s): %d sources to calibrate, %d skipped, %d normal images without a source "
             "not used", counts["n_results"], window.describe(), len(normals), len(skipped),
             counts["n_without_source"])
    published = recalibrate_sources_and_publish(version_dir, normals, args.target_fpr,
                                                _test_set(args, version_dir, source),
                                                progress=True)
    metadata = published.metadata
    summary = {"version": published.version, "path": str(published.path), "recalibrated_from": source["version"],
               "score_method": metadata["score_method"],
               "sources": {name: {"n_images": len(normals[name].images),
                                  **_calibration_summary(metadata["source_calibrations"][name])}
                           for name in normals},
               "skipped_sources": skipped, "test_metrics": _headline(metadata["test_metrics"]),
               "report": _report_page(published.path / REPORT_PATH)}
    print(json.dumps(summary, indent=1))
    return 0


def _report_page(report_dir: Path) -> str | None:
    """The report as one web page, to open in a browser; None if there is no report."""
    page = report_dir / REPORT_PAGE
    return str(page) if page.is_file() else None


def _calibration_summary(calibrated: dict) -> dict:
    return {"target_fpr": calibrated["target_fpr"], "threshold": calibrated["threshold"],
            "previous_threshold": calibrated["calibration"]["previous_threshold"],
            "fpr_at_previous_threshold": calibrated["calibration"]["fpr_at_previous_threshold"]}


def _headline(test_metrics: dict | None) -> dict:
    return {k: v for k, v in (test_metrics or {}).items() if k != "by_method"}


def _test_set(args, version_dir: Path, source: dict):
    """The new version's test set: the --test-normals and --test-anomalies folders, or MNIST's test set if the
    model's normal class is a digit."""
    from training.data import check_background, load_mnist, normal_references
    from training.test_sets import check_apart, check_both_given, folder_test_set, mnist_test_set

    folders = {"--test-normals": args.test_normals, "--test-anomalies": args.test_anomalies}
    if check_both_given(*folders.items()):
        for option, other in (("--no-report", args.no_report), ("--data", args.data)):
            if other:
                raise _UsageError(f"{option} is about MNIST's test set; with --test-normals and --test-anomalies, "
                                  "leave it out")
        if args.images:  # a threshold tested on the images it was calibrated on would flatter itself
            for option, folder in folders.items():
                check_apart({"--images": Path(args.images), option: Path(folder)})
        test_set = folder_test_set(Path(args.test_normals), Path(args.test_anomalies), args.invert,
                                   _framing(version_dir, source), tuple(folders))
        check_background(test_set.images[~test_set.is_anomaly], normal_references(source))
        return test_set
    if args.no_report:
        return None
    if source.get("test_folders") and args.data is None:  # --data asks for MNIST's test set instead
        return _recorded_test_set(args, version_dir, source)
    normal_classes = [c for c in source["normal_classes"] if isinstance(c, int)]
    if not normal_classes:
        return None
    try:  # a version of an MNIST model ships its MNIST evaluation, unless asked not to
        mnist = load_mnist(args.data)
    except DataError as error:
        raise _UsageError(f"{error}. The new version's report needs MNIST; "
                          "pass --no-report to publish without it") from error
    return mnist_test_set(mnist, normal_classes)


def _recorded_test_set(args, version_dir: Path, source: dict):
    """The folders the base version's report was computed on, read again, so that a version recalibrated from
    it ships the same evidence without the folders being named at every recalibration. Folders that cannot be
    read again (gone, emptied, not mounted in this container) leave the new version without a report, with a
    warning: the recalibration itself does not depend on them."""
    from training.data import check_background, normal_references
    from training.test_sets import change_since, check_apart, folder_test_set

    recorded = source["test_folders"]
    normals, anomalies = Path(recorded["normals"]), Path(recorded["anomalies"])
    try:
        if args.images:  # a threshold tested on the images it was calibrated on would flatter itself
            for folder in (normals, anomalies):
                check_apart({"--images": Path(args.images), "the test folder": folder})
        test_set = folder_test_set(normals, anomalies, recorded["invert"], _framing(version_dir, source),
                                   ("the test normals", "the test anomalies"))
        check_background(test_set.images[~test_set.is_anomaly], normal_references(source))
    except DataError as error:
        log.warning("no evaluation report: version %s was tested on %s (normal) and %s (anomalous), which cannot "
                    "be read again: %s. Give --test-normals and --test-anomalies for a report", source["version"],
                    normals, anomalies, error)
        return None
    log.info("the new version's report is computed on the folders version %s was tested on: %s (normal) and %s "
             "(anomalous)%s", source["version"], normals, anomalies, ", inverted" if recorded["invert"] else "")
    change = change_since(recorded, source.get("test_metrics"), test_set)
    if change:  # the report is still worth having, but its figures no longer compare one for one
        log.warning("the test folders changed since version %s was tested on them (%s): the new version's report "
                    "counts them as they are now, so its figures differ from version %s's by the images too",
                    source["version"], change, source["version"])
    return test_set


def _folder_normals(args, version_dir: Path, source: dict):
    from training.data import fingerprint, load_image_folder
    from training.recalibrate import NormalImages

    for option in ("source", "since", "until"):
        if getattr(args, option) is not None:
            raise _UsageError(f"--{option} selects stored results; it applies with --results, not --images")
    images = load_image_folder(args.images, invert=args.invert, framing=_framing(version_dir, source))
    return NormalImages(images, f"folder {args.images}" + (", inverted" if args.invert else ""), fingerprint(images),
                        vouched_for=args.even_if_flagged)


def _stored_normals(args, version_dir: Path, source: dict):
    from training.data import fingerprint
    from training.recalibrate import NormalImages
    from training.stored_results import ResultWindow, load_stored_normals

    if args.invert and not args.test_normals:
        raise _UsageError("--invert applies to --images and the test folders; stored results are kept as the model "
                          "saw them, already inverted where ?invert=true was sent")
    window = ResultWindow(source["name"], args.source, args.since, args.until)
    images, counts = load_stored_normals(args.results, window)
    _check_framing_of_scorers(counts["model_versions"], version_dir, source)
    log.info("%d stored results (%s): %d normal images, %d false alarms among them; %d reviewed as "
             "anomalous left out", counts["n_results"], window.describe(), len(images),
             counts["n_false_alarms_included"], counts["n_reviewed_anomalous_left_out"])
    return NormalImages(images, f"results store {args.results} ({window.describe()})", fingerprint(images),
                        vouched_for=True)  # every flagged one among them was reviewed as normal


def _check_framing_of_scorers(versions: list[int], version_dir: Path, source: dict) -> None:
    """Stored images were framed by the versions that scored them: they must frame as this one does."""
    from training.store import read_metadata

    framing = _framing(version_dir, source)
    for version in versions:
        scored_by = version_dir.parent / str(version)
        if not scored_by.is_dir():
            log.warning("version %s, which scored some of these results, is no longer in the store: its "
                        "framing cannot be checked against version %s's", version, source["version"])
            continue
        other = _framing(scored_by, read_metadata(scored_by))
        if other != framing:
            raise _UsageError(f"some of these results were scored by version {version}, which frames resized "
                              f"uploads as {other!r}, not {framing!r} as version {source['version']} does; "
                              "choose a window (--since) after the switch to a version that frames like it")


def _framing(version_dir: Path, metadata: dict) -> str:
    from training.preprocessing import framing_of_version

    try:
        return framing_of_version(metadata)
    except ValueError as error:
        raise _UsageError(f"{version_dir}: {error}") from error


def _evaluate(args) -> int:
    from training.evaluate import evaluate, evaluate_folders
    from training.test_sets import check_both_given

    folders = check_both_given(("--normals", args.normals), ("--anomalies", args.anomalies))
    if folders and args.data is not None:
        raise _UsageError("--data is MNIST's test set; with --normals and --anomalies, leave it out")
    if args.invert and not folders:
        raise _UsageError("--invert applies to --normals and --anomalies; MNIST is already light on dark")
    version_dir = _version_dir(args)
    if args.report.exists() and not args.report.is_dir():
        # checked before the minutes of scoring that precede writing the report
        raise _UsageError(f"--report {args.report} is a file; it takes a folder to write the report into")
    model_dir = version_dir.resolve().parent
    if args.report.resolve().is_relative_to(model_dir):
        # a version's own report is its evidence as published, and the model's folder holds only versions
        raise _UsageError(f"--report {args.report} is inside the model's folder {model_dir}, beside its versions: "
                          "a published version's report is never rewritten; write the report elsewhere")
    for option, folder in (("--normals", args.normals), ("--anomalies", args.anomalies)) if folders else ():
        if args.report.resolve().is_relative_to(folder.resolve()):
            raise _UsageError(f"--report {args.report} is inside {option} {folder}: the next evaluation would "
                              "read the report's plots as test images; write it elsewhere")
    check_writable(args.report, "--report")
    try:
        with said_when_full(args.report, "No report was written: the files of an earlier one there are as they were"):
            if folders:
                metrics = evaluate_folders(version_dir, args.normals, args.anomalies, args.report, args.invert)
            else:
                metrics = evaluate(version_dir, args.data, args.report)
    except ValueError as error:  # a version not trained on MNIST classes, or of an unknown framing
        raise _UsageError(str(error)) from error
    primary = metrics["primary"]
    print(json.dumps({"report": str(args.report), "page": _report_page(args.report), "auroc": primary["auroc"],
                      "fpr": primary["fpr"], "tpr": primary["tpr"], "n_normal": metrics["n_normal"],
                      "n_anomalous": metrics["n_anomalous"], "n_refused": len(metrics["refused"])}, indent=1))
    return 0


def _train(args) -> int:
    from training.train import (  # deferred: train_and_publish imports TensorFlow
        TrainingDiverged,
        train_and_publish,
    )

    if args.normal is not None and args.images:  # ignored, it would look like a filter of the folder
        raise _UsageError("--normal picks MNIST digits; with --images every image in the folder is normal, so "
                          "leave --normal out (and the folder holds only the images to train on)")
    if args.calibration_fraction + args.validation_fraction >= 1:
        raise _UsageError(f"--calibration-fraction ({args.calibration_fraction}) and --validation-fraction "
                          f"({args.validation_fraction}) would hold out every image; they must add up to less than 1")
    check_writable(args.store / args.name, "the model's folder")
    if shortage := short_of_space(args.store / args.name):
        log.warning("%s", shortage)
    normal = sorted({d for group in (args.normal or [[1]]) for d in group})
    config = TrainConfig(normal=normal, **{k: v for k, v in vars(args).items()
                                           if k not in ("command", "normal")})
    try:
        published = train_and_publish(config)
    except TrainingDiverged as error:  # the options (a learning rate too high) are the user's to change
        raise _UsageError(str(error)) from error
    summary = {"version": published.version, "path": str(published.path),
               "score_method": published.metadata["score_method"],
               "threshold": published.metadata["threshold"],
               "test_metrics": {k: v for k, v in (published.metadata["test_metrics"] or {}).items()
                                if k != "by_method"},
               "seconds": published.metadata["training"]["seconds"],
               "report": _report_page(published.path / REPORT_PATH)}
    print(json.dumps(summary, indent=1))
    return 0


def _model_dir(args) -> Path:
    model_dir = args.store / args.name
    if not model_dir.is_dir():
        raise _UsageError(f"{model_dir} does not exist: check --store and --name")
    return model_dir


def _versions(args) -> int:
    from training.catalog import catalog_json, format_catalog, read_catalog

    catalog = read_catalog(_model_dir(args))
    print(catalog_json(catalog) if args.json else format_catalog(catalog))
    return 0


def _rollback(args) -> int:
    from training.rollback import roll_back

    model_dir = _model_dir(args)
    check_writable(model_dir, "the model's folder")
    published = roll_back(model_dir, args.to)
    origin = published.metadata["origin"]
    print(json.dumps({"version": published.version, "path": str(published.path),
                      "copy_of": origin["from_version"], "replaced_version": origin["replaced_version"],
                      "score_method": published.metadata["score_method"],
                      "threshold": published.metadata["threshold"]}, indent=1))
    return 0


def _prune(args) -> int:
    from training.prune import prune

    model_dir = _model_dir(args)
    if not args.dry_run:
        check_writable(model_dir, "the model's folder")
    pruning = prune(model_dir, args.keep, frozenset(args.keep_version), dry_run=args.dry_run)
    print(json.dumps({"kept": pruning.kept, "would_remove" if args.dry_run else "removed": pruning.removed,
                      "debris": pruning.debris, "freed_bytes": pruning.freed_bytes}, indent=1))
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "recalibrate": _recalibrate, "versions": _versions,
            "rollback": _rollback, "prune": _prune}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with stoppable():
            return COMMANDS[args.command](args)
    except (_UsageError, DataError, CalibrationError, FolderNotWritable) as error:  # the user can fix: exit 2
        print(f"error: {error}", file=sys.stderr)
        return 2
    except DiskFull as error:  # refused nothing, but failed: exit 1, as a backup that fills its disk does
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stopped as stop:
        print(f"stopped by {stop.by} before the job finished: nothing half-written is left, as a store takes only "
              "whole versions and a report folder only whole reports", file=sys.stderr)
        return stop.exit_code

"""The ``lakehouse`` command: thin click wrappers around the library (``pipelines.runner`` and friends).

Every failure a user can cause — bad arguments, invalid settings, unreadable input, a failed stage — ends as one
line on stderr and a non-zero exit code, never a traceback (``--debug`` shows the traceback for bug reports).
Exit codes: 0 ok, 1 the work failed (a stage failed, an error), 2 bad usage or invalid settings, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.resources import Resources

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class UsageProblem(click.ClickException):
    exit_code = 2


def settings_error_line(exc: ValidationError) -> str:
    """A pydantic ValidationError as one line naming the LAKEHOUSE_ variables at fault."""
    parts = []
    for e in exc.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["loc"]:
            parts.append(f"LAKEHOUSE_{str(e['loc'][0]).upper()}: {msg}")
        else:
            parts.append(msg)
    return "invalid settings: " + "; ".join(parts)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise UsageProblem(settings_error_line(exc)) from None


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )


def _run_with_progress(settings: Settings | Resources, stages, trigger: str, **kw):
    """runner.run with a bar over the stages and, while ingesting, one over the files."""
    from pipelines import runner

    ordered = [s for s in runner.ALL_STAGES if s in stages]
    with _progress() as progress:
        overall = progress.add_task("pipeline", total=len(ordered))
        files = None

        def on_stage(stage: str, state: str) -> None:
            if state == "start":
                progress.update(overall, description=stage)
            elif state == "done":
                progress.advance(overall)

        def on_progress(stage: str, done: int, total: int) -> None:
            nonlocal files
            if files is None:
                files = progress.add_task(f"{stage}: files", total=total)
            progress.update(files, completed=done)

        return runner.run(settings, ordered, trigger, on_stage=on_stage, on_progress=on_progress, **kw)


def _print_summary(summary) -> None:
    f = summary.files
    out.print(
        f"run [bold]{summary.run_id}[/] {summary.status}: landed {f['landed']}, accepted {f['accepted']}, "
        f"quarantined {f['quarantined']}, duplicate {f['duplicate']}, unchanged {f['unchanged']}"
    )
    for q in summary.quarantined:
        out.print(f"  quarantined {q['file']}: {q['reason']}")
    if summary.rows_per_landing:
        out.print(f"  landing rows: {sum(summary.rows_per_landing.values())} in {len(summary.rows_per_landing)} feeds")
    if summary.curated_tables or summary.mart_tables:
        out.print(f"  curated tables: {len(summary.curated_tables)}, mart tables: {len(summary.mart_tables)}")
    if summary.transform_skipped:
        out.print(f"  transform skipped: {summary.transform_skipped}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in summary.stage_seconds.items())
    out.print(f"  stages: {timings}; lineage events: {summary.lineage_events}")
    if summary.lineage_undelivered:
        err.print(f"warning: {summary.lineage_undelivered} lineage events not delivered (kept for replay)")


def _finish(summary) -> None:
    _print_summary(summary)
    if summary.status != "succeeded":
        raise click.ClickException(f"run {summary.run_id} failed in {summary.error}")
    if summary.failed:
        first = summary.failed[0]
        raise click.ClickException(
            f"{len(summary.failed)} file(s) could not be read and were not landed, e.g. {first['reason']}"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """CGT Lakehouse pipelines: generate, ingest, validate, transform, publish; settings from LAKEHOUSE_* env."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("--scale", type=click.IntRange(min=1), help="Number of batches (default: LAKEHOUSE_SCALE).")
@click.option("--seed", type=int, help="Random seed (default: LAKEHOUSE_SEED).")
@click.option("--fault-rate", type=click.FloatRange(0, 1), help="Share of faulty files/rows (LAKEHOUSE_FAULT_RATE).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Default: the landing dir.")
def generate(scale: int | None, seed: int | None, fault_rate: float | None, out_dir: Path | None) -> None:
    """Write a synthetic CGT data set (with injected faults) into the landing directory."""
    settings = load_settings()
    report = _generate(settings, out_dir, scale, seed, fault_rate)
    out.print(f"generated {_count(report, 'files')} files in {out_dir or settings.landing_dir}")


def _generate(settings: Settings, out_dir, scale, seed, fault_rate):
    from pipelines.generate import generate as gen

    return gen(
        settings,
        out_dir or Path(settings.landing_dir),
        scale=scale if scale is not None else settings.scale,
        seed=seed if seed is not None else settings.seed,
        fault_rate=fault_rate if fault_rate is not None else settings.fault_rate,
    )


def _count(report, name: str) -> int:
    value = getattr(report, name, None)
    return len(value) if isinstance(value, list | tuple | dict) else int(value or 0)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def ingest(paths: tuple[Path, ...]) -> None:
    """Land files (or directories of files) in the raw zone and validate them."""
    from pipelines.ingest import expand
    from pipelines.runner import settled

    settings = load_settings()
    found = expand(paths)
    if not found:
        raise UsageProblem("no files found in the given path(s)")
    files = settled(found, settings.landing_settle_seconds)
    if len(files) < len(found):
        err.print(
            f"{len(found) - len(files)} file(s) changed in the last {settings.landing_settle_seconds} s (still being"
            " written?): left for the next run"
        )
    if not files:
        raise UsageProblem("every file found is still being written; run again later")
    _finish(_run_with_progress(settings, ("ingest", "validate"), "cli:ingest", paths=files))


@cli.command("run")
@click.option(
    "--stage",
    "stages",
    multiple=True,
    type=click.Choice(["ingest", "validate", "transform", "publish"]),
    help="Run only these stages (repeatable). Default: all.",
)
@click.option("--select", help="dbt selector for the transform stage, e.g. 'marts.spc+'.")
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Rebuild every curated table and mart from all landing files (default: only what new data touches).",
)
def run_cmd(stages: tuple[str, ...], select: str | None, full_refresh: bool) -> None:
    """Run the pipeline (all stages, or a selection) on what is in the landing directory."""
    from pipelines import runner

    settings = load_settings()
    trigger = "cli:run --full-refresh" if full_refresh else "cli:run"
    _finish(_run_with_progress(settings, stages or runner.STAGES, trigger, select=select, full_refresh=full_refresh))


@cli.command()
@click.option("--scale", type=click.IntRange(min=1), help="Number of batches (default: LAKEHOUSE_SCALE).")
def demo(scale: int | None) -> None:
    """Generate a data set and run the whole pipeline; writes HOME/demo/summary.json."""
    from pipelines import runner

    # The demo lands the files it has just written and closed itself: no settle window to wait for.
    settings = load_settings().model_copy(update={"landing_settle_seconds": 0})
    t0 = time.perf_counter()
    report = _generate(settings, None, scale, None, None)
    generate_seconds = round(time.perf_counter() - t0, 2)
    out.print(f"generated {_count(report, 'files')} files ({generate_seconds:.1f}s)")
    summary = _run_with_progress(settings, runner.STAGES, "cli:demo")
    summary.stage_seconds = {"generate": generate_seconds, **summary.stage_seconds}
    extra = {"wall_seconds": round(time.perf_counter() - t0, 2), "scale": scale or settings.scale}
    if summary.status == "succeeded":
        # Everything HOME holds, not only this run: a repeated demo re-scans files it already landed.
        extra["home_totals"] = runner.status_report(settings, limit=1)["counts"]
    path = runner.write_summary(summary, Path(settings.home) / "demo" / "summary.json", extra=extra)
    if summary.files["unchanged"]:
        err.print(
            f"note: {summary.files['unchanged']} files were already landed by an earlier run in {settings.home}; "
            "`make clean` gives a fresh demo"
        )
    _finish(summary)
    out.print(f"summary: {path} (wall time {extra['wall_seconds']:.1f}s)")


@cli.command()
def maintain() -> None:
    """Expire curated snapshots older than the retention and delete unreferenced files (nightly housekeeping)."""
    from pipelines import runner

    settings = load_settings()
    summary = _run_with_progress(settings, (runner.MAINTAIN,), "cli:maintain")
    done = summary._results.get(runner.MAINTAIN) or {}
    if done:
        out.print(
            f"expired {done['snapshots_expired']} of {done['snapshots_before']} snapshots older than "
            f"{done['retention_days']} days; deleted {done['files_deleted']} files"
        )
    _finish(summary)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many runs to list.")
def status(as_json: bool, limit: int) -> None:
    """Last runs, file counts, quarantined files with reasons, and every file's outcome."""
    from pipelines import runner

    settings = load_settings()
    data = runner.status_report(settings, limit=limit)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    runs = Table(title="runs", title_justify="left")
    for col in ("run id", "status", "trigger", "who", "started (UTC)", "ended (UTC)"):
        runs.add_column(col, overflow="fold")
    for r in data["runs"]:
        runs.add_row(r["run_id"], r["status"], r["trigger"], r["who"], r["started_at"][:19], (r["ended_at"] or "")[:19])
    out.print(runs)
    out.print("files: " + ", ".join(f"{k} {v}" for k, v in data["counts"].items()))
    waiting = data["lineage"]
    out.print(
        f"lineage: {waiting['waiting']} events waiting for delivery, {waiting['rejected']} refused by the server"
        + (" (`lakehouse lineage-send` sends them now; the next run does too)" if waiting["waiting"] else "")
    )
    if data["quarantined"]:
        q = Table(title="quarantined", title_justify="left")
        for col in ("file", "sha256", "reason"):
            q.add_column(col, overflow="fold")
        for f in data["quarantined"]:
            q.add_row(f["file"], f["sha256"][:12], f["reason"])
        out.print(q)


@cli.command()
@click.option("--sha256", "sha256s", multiple=True, help="A landed file's SHA-256 (repeatable).")
@click.option("--file", "names", multiple=True, help="A landed file's original name (repeatable).")
@click.option("--feed", "feeds", multiple=True, help="Every file of this feed, e.g. lims__qc_results (repeatable).")
def revalidate(sha256s: tuple[str, ...], names: tuple[str, ...], feeds: tuple[str, ...]) -> None:
    """Validate landed files again after a suite or registry change, then rebuild the curated tables and marts.

    The earlier outcome of each file stays on record; the new one is appended and counts from now on.
    Duplicates are decided by their original file, so select the original."""
    from pipelines import control
    from pipelines.resources import Resources
    from pipelines.sources import FEEDS_BY_NAME

    if not (sha256s or names or feeds):
        raise UsageProblem("name the files to validate again: --sha256, --file or --feed")
    unknown = [f for f in feeds if f not in FEEDS_BY_NAME]
    if unknown:
        raise UsageProblem(f"unknown feed(s) {', '.join(unknown)}; feeds: {', '.join(sorted(FEEDS_BY_NAME))}")
    res = Resources.of(load_settings())  # built once: the selection and the run share its connections
    targets = control.revalidation_targets(res.control, sha256s=[s.lower() for s in sha256s], names=names, feeds=feeds)
    if not targets:
        raise UsageProblem("no accepted or quarantined landed file matches the selection (see `lakehouse status`)")
    summary = _run_with_progress(res, ("validate", "transform", "publish"), "cli:revalidate", revalidate=targets)
    for r in summary._notes.get("revalidated", []):
        out.print(f"  {r['file']} ({r['sha256'][:12]}): {r['from']} -> {r['to']}")
    _finish(summary)


@cli.command("audit-trail")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit_trail_cmd(batch_id: str, as_json: bool) -> None:
    """What QA reviews before disposition: every raw file behind BATCH_ID's rows (SHA-256, outcome), corrections,
    flags and rejects, late or re-delivered data, and the runs that touched it."""
    from pipelines.audit import AuditError, audit_trail

    try:
        data = audit_trail(load_settings(), batch_id)
    except AuditError as exc:
        raise UsageProblem(str(exc)) from None
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    out.print(f"batch {batch_id}: disposition {data['disposition_at'] or 'not yet'}")
    files = Table(title="raw files behind its rows", title_justify="left")
    for col in ("feed", "file", "sha256", "outcome", "landed", "current", "superseded", "flagged", "rejected"):
        files.add_column(col, overflow="fold")
    for f in data["files"]:
        files.add_row(
            f["feed"],
            f["file"],
            f["sha256"][:12],
            f["outcome"] or "?",
            *(str(f[k]) for k in ("rows_landed", "rows_current", "rows_superseded", "rows_flagged", "rows_rejected")),
        )
    out.print(files)
    for title, rows in (("quarantined files naming it", data["quarantined"]), ("late", data["late"])):
        for r in rows:
            out.print(f"{title}: {r['file']} ({r['sha256'][:12]}) received {r['received_at']} {r.get('reason') or ''}")
    for r in data["redelivered"]:
        out.print(f"re-delivered: {r['file']} ({r['sha256'][:12]}) received {r['received_at']}")
    for c in data["corrections"]:
        key = ", ".join(f"{k}={v}" for k, v in c["key"].items())
        versions = " -> ".join(f"{v['file']}:{v['row']}" for v in c["versions"])
        out.print(f"correction {c['feed']} [{key}]: {versions}; current {c['current']}")
    out.print("flags: " + (", ".join(f"{k} {v}" for k, v in data["flags"].items()) or "none"))
    out.print("rejects: " + (", ".join(f"{k} {v}" for k, v in data["rejects"].items()) or "none"))
    runs = Table(title="runs that touched it", title_justify="left")
    for col in ("run id", "status", "trigger", "who", "started (UTC)"):
        runs.add_column(col, overflow="fold")
    for r in data["runs"]:
        runs.add_row(r["run_id"], r["status"], r["trigger"], r["who"], r["started_at"][:19])
    out.print(runs)


@cli.command("lineage-send")
def lineage_send() -> None:
    """Send the lineage events waiting in HOME/lineage/undelivered.jsonl to the lineage server now, oldest first."""
    from pipelines import lineage

    settings = load_settings()
    if settings.lineage_transport != "http":
        raise UsageProblem("lineage-send needs LAKEHOUSE_LINEAGE_TRANSPORT=http (and LAKEHOUSE_MARQUEZ_URL)")
    try:
        sent, left = lineage.send_waiting(settings)
    except lineage.DeliveryError as exc:
        raise click.ClickException(f"lineage server did not take the events, they are kept for later: {exc}") from None
    out.print(f"lineage: sent {sent}, {left} waiting")


@cli.group()
def qualify() -> None:
    """IQ/OQ qualification: requirement documents, evidence packages and their verification
    (docs/qualification/README.md)."""


@qualify.command("docs")
@click.option("--check", is_flag=True, help="Only check the documents are current (exit 1 when not).")
def qualify_docs(check: bool) -> None:
    """Render URS.md, FS.md and traceability.md from docs/qualification/*.yml."""
    from pipelines.qualify import catalog

    try:
        cat = catalog.load()
    except catalog.CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    rendered = catalog.render_all(cat)
    if check:
        stale = [n for n, text in rendered.items() if (catalog.DOCS_DIR / n).read_text() != text]
        if stale:
            raise click.ClickException(f"out of date: {', '.join(stale)} (run `lakehouse qualify docs`)")
        out.print(f"{len(rendered)} documents current: {len(cat.requirements)} requirements, {len(cat.checks)} checks")
        return
    for name, text in rendered.items():
        (catalog.DOCS_DIR / name).write_text(text)
    out.print(f"wrote {', '.join(rendered)} in {catalog.DOCS_DIR}")


@qualify.command("build")
@click.option("--phase", "phases", type=click.Choice(["iq", "oq"]), multiple=True, required=True,
              help="Phase(s) this package qualifies (repeatable); every check of them must have run.")  # fmt: skip
@click.option("--ansible", "ansible_runs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, help="JSON-callback output of playbooks/qualify.yml (repeatable).")  # fmt: skip
@click.option("--check-diff", "check_diffs", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              multiple=True, help="JSON-callback output of `site.yml --check --diff` (IQ-CFG-01).")  # fmt: skip
@click.option("--browser", "browser_dirs", type=click.Path(exists=True, file_okay=False, path_type=Path),
              multiple=True, help="--out directory of lab/e2e_browser.py (checks.json, screenshots).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="New directory for the package.")  # fmt: skip
@click.option("--system", default="", help="What was qualified (site, inventory, release), printed on the report.")
@click.option("--executor", help="Who ran the checks (default: the user running this command).")
@click.option("--no-pdf", is_flag=True, help="Skip report.pdf (no Chromium on this machine).")
@click.option("--record-last", is_flag=True,
              help="Also write docs/qualification/last-run.json and re-render the traceability matrix.")  # fmt: skip
def qualify_build(phases, ansible_runs, check_diffs, browser_dirs, out_dir, system, executor, no_pdf, record_last):
    """Build the evidence package from a qualification run's outputs; exit 1 when the run FAILs (the package is
    written all the same)."""
    from pipelines.qualify import catalog, evidence, package

    try:
        cat = catalog.load()
        results, problems = [], []
        for loader, paths in ((evidence.from_ansible, ansible_runs), (evidence.from_check_diff, check_diffs),
                              (evidence.from_browser, browser_dirs)):  # fmt: skip
            for p in paths:
                r, probs = loader(p)
                results += r
                problems += probs
        data = package.build(cat, results, problems, tuple(phases), out_dir, system=system, executor=executor,
                             pdf=not no_pdf)  # fmt: skip
    except (catalog.CatalogError, evidence.EvidenceError, package.PackageError) as exc:
        raise UsageProblem(str(exc)) from None
    digest = (out_dir / package.MANIFEST_HASH).read_text().split()[0]
    s = data["summary"]
    out.print("requirement coverage:")
    for rid, c in data["coverage"].items():
        out.print(f"  {rid:<10} {c['result']:<13} {', '.join(c['executed']) or '-'}", markup=False)
    for d in data["deviations"]:
        text = " / ".join(d["text"].splitlines())[:300]
        out.print(f"deviation {d['id']} {d['kind']}: {d['check']} {d['host']} {text}", markup=False)
    out.print(
        f"qualification {data['result']}: {s['passed']} passed, {s['failed']} failed, {s['deviations']} deviation(s); "
        f"{s['requirements_covered']}/{s['requirements_in_scope']} requirements traced to an executed check"
    )
    out.print(f"package {out_dir} (manifest sha256 {digest})")
    if record_last:
        last = {k: data[k] for k in ("package_id", "result", "finished_utc", "summary")}
        last["code_version"] = data["code_version"]["describe"]
        last["checks"] = {}
        for r in data["results"]:
            prev = last["checks"].get(r["check"], "PASS")
            last["checks"][r["check"]] = "FAIL" if "FAIL" in (prev, r["result"]) else "PASS"
        (catalog.DOCS_DIR / "last-run.json").write_text(json.dumps(last, indent=2) + "\n")
        catalog.write_docs()
    if data["result"] != "PASS":
        sys.exit(1)


@qualify.command("verify")
@click.argument("package_dir", metavar="PACKAGE", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--expect-sha256", help="The manifest sha256 written on the signed record.")
def qualify_verify(package_dir: Path, expect_sha256: str | None) -> None:
    """Recompute every hash of an evidence package and report each change (exit 1 when anything changed)."""
    from pipelines.qualify import package

    try:
        digest, changes = package.verify(package_dir, expect_sha256)
    except package.PackageError as exc:
        raise UsageProblem(str(exc)) from None
    for c in changes:
        out.print(f"changed: {c}", markup=False)
    if changes:
        raise click.ClickException(f"{package_dir}: {len(changes)} change(s) since the package was written")
    out.print(f"{package_dir}: intact, every file matches its manifest (manifest sha256 {digest})")


@cli.group()
def release() -> None:
    """Releases: version -> commit + bundle manifest sha256, kept in releases.yml (docs/operations/upgrade.md)."""


def _releases():
    from pipelines.operations import releases

    try:
        return releases, releases.load()
    except releases.ReleaseError as exc:
        raise UsageProblem(str(exc)) from None


@release.command("list")
def release_list() -> None:
    """Every recorded release, oldest first."""
    _, known = _releases()
    for r in known:
        out.print(f"{r.version}  {r.commit[:12]}  {r.date}  bundle {r.bundle_manifest_sha256 or '-'}", markup=False)


@release.command("show")
@click.argument("version", required=False)
@click.option("--previous", is_flag=True, help="The release before this checkout's HEAD (N-1).")
def release_show(version: str | None, previous: bool) -> None:
    """One release as JSON: VERSION, or --previous (N-1 of this checkout)."""
    import dataclasses

    mod, known = _releases()
    if bool(version) == previous:
        raise UsageProblem("give either VERSION or --previous")
    try:
        rel = mod.previous(known) if previous else mod.find(known, version)
    except mod.ReleaseError as exc:
        raise UsageProblem(str(exc)) from None
    click.echo(json.dumps({**dataclasses.asdict(rel), "tag": rel.tag}))


@release.command("record")
@click.argument("version")
@click.option("--commit", default="HEAD", show_default=True, help="The commit the release is.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The bundle built from that commit (its manifest.json is hashed into the record).")  # fmt: skip
@click.option("--note", default="", help="One line: what the release is.")
@click.option("--no-tag", is_flag=True, help="Record without creating the git tag.")
def release_record(version: str, commit: str, bundle_dir: Path | None, note: str, no_tag: bool) -> None:
    """Tag COMMIT as v<VERSION> and add it to releases.yml (then commit releases.yml)."""
    mod, _ = _releases()
    manifest = bundle_dir / "manifest.json" if bundle_dir else None
    if manifest is not None and not manifest.exists():
        raise UsageProblem(f"{bundle_dir}: no manifest.json (build the bundle of that commit first)")
    try:
        rel = mod.record(version, commit, manifest, note=note, tag=not no_tag)
    except mod.ReleaseError as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"release {rel.version}: {rel.commit} bundle {rel.bundle_manifest_sha256 or '-'}", markup=False)


@release.command("bundle")
@click.argument("version")
@click.option("--bundle", "bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The bundle built from the release's commit.")  # fmt: skip
def release_bundle(version: str, bundle_dir: Path) -> None:
    """Record the bundle of a release recorded without one (built after it was tagged)."""
    mod, _ = _releases()
    try:
        rel = mod.attach_bundle(version, bundle_dir / "manifest.json")
    except mod.ReleaseError as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"release {rel.version}: bundle {rel.bundle_manifest_sha256}", markup=False)


@release.command("target")
@click.option("--checkout", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The checkout whose playbooks and roles run the change.")  # fmt: skip
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="manifest.json of the target bundle.")  # fmt: skip
@click.option("--allow-bundle-commit", default="",
              help="The bundle's source commit when it is not the checkout's HEAD (named explicitly).")  # fmt: skip
def release_target(checkout: Path, manifest: Path, allow_bundle_commit: str) -> None:
    """The target of a change as JSON (checkout HEAD and describe, the bundle's source commit and sha256); exit 2
    with one line when the bundle was not built from the checkout's HEAD and no --allow-bundle-commit names it."""
    mod, _ = _releases()
    try:
        click.echo(json.dumps(mod.change_target(manifest, checkout, allow_bundle_commit)))
    except mod.ReleaseError as exc:
        raise UsageProblem(str(exc)) from None


@cli.command("change-record")
@click.option("--check-run", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON-callback output of `site.yml --check --diff` of the target.")  # fmt: skip
@click.option("--to-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="manifest.json of the target bundle.")  # fmt: skip
@click.option("--from-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="manifest.json of the installed release's bundle (names its versions).")  # fmt: skip
@click.option("--fingerprints", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON: host -> role-run log lines (the upgrade's preflight writes it).")  # fmt: skip
@click.option("--from-release", default="", help="Installed release (version or label).")
@click.option("--to-release", default="", help="Target release (version or label).")
@click.option("--kind", type=click.Choice(["upgrade", "rollback"]), default="upgrade", show_default=True)
@click.option("--checkout", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The checkout running the change: its HEAD must be the bundle's source commit.")  # fmt: skip
@click.option("--allow-bundle-commit", default="",
              help="The bundle's source commit when it is not the checkout's HEAD (named explicitly).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for change-record.json and change-record.md.")  # fmt: skip
def change_record(check_run, to_manifest, from_manifest, fingerprints, from_release, to_release, kind, checkout,
                  allow_bundle_commit, out_dir):  # fmt: skip
    """Write the change record of an upgrade or rollback (before anything changes); exit 1 if the check run failed.
    With --checkout, a target bundle not built from the checkout's HEAD is refused (exit 2, one line)."""
    from pipelines.operations import change_record as cr
    from pipelines.operations import releases
    from pipelines.qualify.evidence import EvidenceError

    def side(label: str, manifest: Path | None) -> dict:
        if manifest is None:
            return {"release": label} if label else {}
        m = json.loads(manifest.read_text())
        return {
            "release": label,
            "bundle_source_commit": m.get("source_commit", ""),
            "bundle_manifest_sha256": releases.manifest_sha256(manifest),
        }

    try:
        to_side = (
            {"release": to_release, **releases.change_target(to_manifest, checkout, allow_bundle_commit)}
            if checkout is not None
            else side(to_release, to_manifest)
        )
        rec = cr.build(
            check_run,
            json.loads(to_manifest.read_text()),
            json.loads(from_manifest.read_text()) if from_manifest else None,
            json.loads(fingerprints.read_text()) if fingerprints else None,
            side(from_release, from_manifest),
            to_side,
            kind,
        )
    except (EvidenceError, releases.ReleaseError, json.JSONDecodeError, KeyError) as exc:
        raise UsageProblem(f"change-record: {exc}") from None
    js, md = cr.write(rec, out_dir)
    for host, s in rec["summary"].items():
        out.print(
            f"{host}: {s['components_changing']}/{s['components']} components change, "
            f"{s['configuration_changes']} configuration changes, {s['unpredicted_tasks']} tasks not predictable",
            markup=False,
        )
    out.print(f"wrote {js} and {md}", markup=False)
    if rec["problems"]:
        raise click.ClickException("; ".join(rec["problems"]))


DAGSTER_YAML = """\
# Written by `lakehouse dev`; the dagster role renders the same concurrency block (docs/orchestration.md).
concurrency:
  pools:
    default_limit: 1   # the duckdb_writer pool: one DuckDB writer at a time
    granularity: op
  runs:
    tag_concurrency_limits:   # one writing run at a time; the others wait in the queue
      - key: lakehouse/writes
        limit: 1
telemetry:
  enabled: false
"""


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
def dev(port: int) -> None:
    """Start the Dagster UI locally on this code location (dagster dev -m pipelines.definitions)."""
    settings = load_settings()  # fail fast on invalid settings before Dagster starts
    home = Path(os.environ.get("DAGSTER_HOME") or Path(settings.home, "dagster")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-m", "pipelines.definitions", "-p", str(port)]
    os.execv(cmd[0], cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns every error into one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, standalone_mode=False, prog_name="lakehouse")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(f"try '{exc.ctx.command_path} --help'", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into one line
        if debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(f"error: {type(exc).__name__}: {first}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

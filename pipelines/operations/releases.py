"""Releases: what a version is, where its code and its bundle are (ADR 0185).

A release is an annotated git tag ``v<version>`` on the commit its bundle was built from, recorded in
``releases.yml`` at the repository root: version -> commit, tag, date and the sha256 of the bundle's
``manifest.json`` (what ``lakehouse_artifact_manifest_sha256`` pins on a site). The file travels with every clone,
tags may not: a clone finds N-1 from the file alone. The record of a release is committed right after the release
commit (it cannot be inside the commit whose bundle it hashes), so "the newest release" of a checkout is the newest
entry whose commit is an ancestor of (or equal to) HEAD.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RELEASES_FILE = ROOT / "releases.yml"
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
HEADER = """\
# Releases of the CGT Lakehouse (ADR 0185; docs/operations/upgrade.md). Written by `make release`, never by hand.
# A release = the annotated tag v<version> on <commit> + the bundle built from that commit, identified by the sha256
# of its manifest.json (set it as lakehouse_artifact_manifest_sha256 on a site: the roles then refuse any other
# bundle). Tags need not travel with a clone; this file does: `lakehouse release show --previous` finds N-1 from it.
"""


class ReleaseError(ValueError):
    """releases.yml or a release request is not valid (one line, names the problem)."""


@dataclass(frozen=True)
class Release:
    version: str
    commit: str
    date: str
    bundle_manifest_sha256: str | None
    note: str = ""

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def key(self) -> tuple[int, int, int]:
        return version_key(self.version)


def version_key(version: str) -> tuple[int, int, int]:
    m = VERSION_RE.match(version)
    if not m:
        raise ReleaseError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. 0.2.0)")
    return int(m[1]), int(m[2]), int(m[3])


def load(path: Path = RELEASES_FILE) -> list[Release]:
    """The releases in the file, oldest first; ReleaseError names the first problem."""
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("releases", []), list):
        raise ReleaseError(f"{path}: expected a mapping with a list `releases`")
    out: list[Release] = []
    for i, item in enumerate(doc.get("releases") or []):
        where = f"{path.name}: release #{i + 1}"
        if not isinstance(item, dict):
            raise ReleaseError(f"{where}: not a mapping")
        unknown = set(item) - {"version", "commit", "date", "bundle_manifest_sha256", "note"}
        if unknown:
            raise ReleaseError(f"{where}: unknown key(s) {sorted(unknown)}")
        version = str(item.get("version", ""))
        version_key(version)
        commit = str(item.get("commit", ""))
        if not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise ReleaseError(f"{where} ({version}): commit must be 40 lower-case hex digits, got {commit!r}")
        sha = item.get("bundle_manifest_sha256")
        if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", str(sha)):
            raise ReleaseError(f"{where} ({version}): bundle_manifest_sha256 must be 64 hex digits or null")
        out.append(Release(version, commit, str(item.get("date", "")), sha, str(item.get("note", ""))))
    versions = [r.version for r in out]
    if len(set(versions)) != len(versions):
        raise ReleaseError(f"{path.name}: a version is listed twice: {versions}")
    if [r.key for r in out] != sorted(r.key for r in out):
        raise ReleaseError(f"{path.name}: releases must be listed oldest first: {versions}")
    return out


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key (the repository's yamllint rule)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def dump(releases: list[Release], path: Path = RELEASES_FILE) -> None:
    body = yaml.dump(
        {"releases": [{k: v for k, v in asdict(r).items() if v != ""} for r in releases]},
        Dumper=_Dumper,
        sort_keys=False,
        width=120,
    )
    path.write_text(HEADER + "---\n" + body)


def git(*args: str, cwd: Path = ROOT) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)}: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout.strip()


def is_ancestor(commit: str, of: str, cwd: Path = ROOT) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, of], cwd=cwd).returncode == 0


def find(releases: list[Release], version: str) -> Release:
    for r in releases:
        if r.version == version:
            return r
    raise ReleaseError(f"no release {version} in releases.yml (known: {', '.join(r.version for r in releases) or '-'})")


def previous(releases: list[Release], head: str = "HEAD", cwd: Path = ROOT) -> Release:
    """N-1 of a checkout: the newest release whose commit is an ancestor of HEAD and not HEAD itself."""
    head_commit = git("rev-parse", head, cwd=cwd)
    candidates = [r for r in releases if r.commit != head_commit and is_ancestor(r.commit, head_commit, cwd)]
    if not candidates:
        raise ReleaseError(f"no release before {head_commit[:12]} in releases.yml")
    return max(candidates, key=lambda r: r.key)


def manifest_sha256(manifest: Path) -> str:
    """sha256 of manifest.json's bytes: what roles/artifact compares lakehouse_artifact_manifest_sha256 with."""
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def _bundle_sha256(manifest: Path, commit: str) -> str:
    """sha256 of a bundle manifest built from commit (ReleaseError if it was built from another)."""
    try:
        built_from = json.loads(manifest.read_text()).get("source_commit", "")
    except (OSError, json.JSONDecodeError) as exc:
        raise ReleaseError(f"{manifest}: not a bundle manifest ({exc})") from None
    if built_from != commit:
        raise ReleaseError(
            f"{manifest}: bundle built from {built_from[:12] or 'an unknown commit'}, not from {commit[:12]}"
        )
    return manifest_sha256(manifest)


def change_target(manifest: Path, checkout: Path, allow_bundle_commit: str = "") -> dict:
    """The target of a change, labelled apart: the checkout whose playbooks and roles run it (HEAD, `git describe`)
    and the bundle they install (the commit it was built from, its manifest sha256). A bundle built from another
    commit than the checkout's HEAD is refused (ReleaseError, one line) unless allow_bundle_commit names that commit
    (at least 7 hex digits): the roles of one commit with the artifacts of another are not a release."""
    try:
        built_from = str(json.loads(manifest.read_text()).get("source_commit", ""))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReleaseError(f"{manifest}: not a bundle manifest ({exc})") from None
    head = git("rev-parse", "HEAD", cwd=checkout)
    describe = git("describe", "--tags", "--always", "--dirty", cwd=checkout)
    allowed = bool(re.fullmatch(r"[0-9a-f]{7,40}", allow_bundle_commit)) and built_from.startswith(allow_bundle_commit)
    if built_from != head and not allowed:
        hint = (
            f"the allowed commit {allow_bundle_commit} is not it"
            if allow_bundle_commit
            else "build the bundle from this checkout, or name its commit with upgrade_allow_bundle_commit"
        )
        raise ReleaseError(
            f"the target bundle was built from {built_from[:12] or 'an unknown commit'}, not from the checkout's "
            f"HEAD {head[:12]} ({checkout}): {hint}"
        )
    return {
        "checkout_commit": head,
        "checkout_describe": describe,
        "bundle_source_commit": built_from,
        "bundle_manifest_sha256": manifest_sha256(manifest),
        "bundle_commit_allowed": built_from != head,
    }


def attach_bundle(version: str, manifest: Path, path: Path = RELEASES_FILE) -> Release:
    """Record the bundle of a release recorded without one (built after the tag); never replaces a recorded one."""
    releases = load(path)
    rel = find(releases, version)
    if rel.bundle_manifest_sha256:
        raise ReleaseError(f"release {version} already has its bundle: {rel.bundle_manifest_sha256}")
    new = Release(rel.version, rel.commit, rel.date, _bundle_sha256(manifest, rel.commit), rel.note)
    dump([new if r.version == version else r for r in releases], path)
    return new


def record(
    version: str,
    commit: str,
    manifest: Path | None,
    note: str = "",
    path: Path = RELEASES_FILE,
    cwd: Path = ROOT,
    tag: bool = True,
) -> Release:
    """Add a release to the file (and tag it). The bundle, if given, must have been built from that commit."""
    version_key(version)
    full = git("rev-parse", "--verify", f"{commit}^{{commit}}", cwd=cwd)
    releases = load(path)
    if any(r.version == version for r in releases):
        raise ReleaseError(f"release {version} is already recorded")
    if releases and version_key(version) <= releases[-1].key:
        raise ReleaseError(f"release {version} is not newer than the newest recorded, {releases[-1].version}")
    sha = _bundle_sha256(manifest, full) if manifest is not None else None
    rel = Release(version, full, datetime.now(UTC).strftime("%Y-%m-%d"), sha, note)
    if tag:
        existing = subprocess.run(["git", "rev-parse", "-q", "--verify", f"refs/tags/{rel.tag}"], cwd=cwd,
                                  capture_output=True, text=True)  # fmt: skip
        if existing.returncode == 0:
            if git("rev-parse", f"{rel.tag}^{{commit}}", cwd=cwd) != full:
                raise ReleaseError(f"tag {rel.tag} exists and points at another commit")
        else:
            message = f"CGT Lakehouse {version}\n\nbundle manifest sha256: {sha or 'not recorded'}\n"
            git("tag", "-a", rel.tag, full, "-m", message, cwd=cwd)
    dump([*releases, rel], path)
    return rel

"""releases.yml and `lakehouse release`: recording, tagging and finding N-1, in a real throwaway git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.operations import releases as rel


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    git(r, "config", "user.email", "t@example.invalid")
    git(r, "config", "user.name", "t")
    for i in range(3):
        (r / "f").write_text(str(i))
        git(r, "add", "f")
        git(r, "commit", "-q", "-m", f"c{i}")
    return r


def bundle(tmp_path: Path, commit: str) -> Path:
    d = tmp_path / f"bundle-{commit[:7]}"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"source_commit": commit, "artifacts": []}))
    return d / "manifest.json"


def test_record_tags_and_finds_the_previous_release(repo, tmp_path):
    path = repo / "releases.yml"
    c0, c2 = git(repo, "rev-parse", "HEAD~2"), git(repo, "rev-parse", "HEAD")
    manifest = bundle(tmp_path, c0)
    r = rel.record("0.1.0", "HEAD~2", manifest, note="first", path=path, cwd=repo)
    assert r.commit == c0 and r.bundle_manifest_sha256 == rel.manifest_sha256(manifest)
    assert git(repo, "rev-parse", "v0.1.0^{commit}") == c0
    assert "bundle manifest sha256: " + r.bundle_manifest_sha256 in git(repo, "tag", "-n5", "v0.1.0")
    # The record is committed after the release commit; from HEAD the previous release is 0.1.0.
    assert rel.previous(rel.load(path), cwd=repo) == r
    rel.record("0.2.0", c2, None, path=path, cwd=repo, tag=False)
    loaded = rel.load(path)
    assert [x.version for x in loaded] == ["0.1.0", "0.2.0"]
    # HEAD is 0.2.0 itself: its N-1 is still 0.1.0 (a release is never its own predecessor).
    assert rel.previous(loaded, cwd=repo).version == "0.1.0"
    assert path.read_text().startswith("# Releases of the CGT Lakehouse")


def test_found_without_tags(repo, tmp_path):
    """A clone without tags still finds N-1: the file is enough."""
    path = repo / "releases.yml"
    rel.record("0.1.0", "HEAD~1", None, path=path, cwd=repo)
    git(repo, "tag", "-d", "v0.1.0")
    assert rel.previous(rel.load(path), cwd=repo).commit == git(repo, "rev-parse", "HEAD~1")


@pytest.mark.parametrize(
    ("version", "commit", "manifest_commit", "message"),
    [
        ("1.0", "HEAD", None, "is not MAJOR.MINOR.PATCH"),
        ("0.0.9", "HEAD", None, "is not newer than the newest recorded, 0.1.0"),
        ("0.1.0", "HEAD", None, "release 0.1.0 is already recorded"),
        ("0.2.0", "no-such-ref", None, "git rev-parse"),
        ("0.2.0", "HEAD", "HEAD~1", "not from"),
    ],
)
def test_bad_requests_fail_with_one_line_and_leave_the_file(repo, tmp_path, version, commit, manifest_commit, message):
    path = repo / "releases.yml"
    rel.record("0.1.0", "HEAD~2", None, path=path, cwd=repo)
    before = path.read_text()
    manifest = bundle(tmp_path, git(repo, "rev-parse", manifest_commit)) if manifest_commit else None
    with pytest.raises(rel.ReleaseError, match=message):
        rel.record(version, commit, manifest, path=path, cwd=repo)
    assert path.read_text() == before


def test_a_bundle_built_later_is_attached_once(repo, tmp_path):
    path = repo / "releases.yml"
    c1 = git(repo, "rev-parse", "HEAD~1")
    rel.record("0.1.0", c1, None, path=path, cwd=repo)
    with pytest.raises(rel.ReleaseError, match="not from"):
        rel.attach_bundle("0.1.0", bundle(tmp_path, git(repo, "rev-parse", "HEAD")), path=path)
    manifest = bundle(tmp_path, c1)
    assert rel.attach_bundle("0.1.0", manifest, path=path).bundle_manifest_sha256 == rel.manifest_sha256(manifest)
    assert rel.load(path)[0].bundle_manifest_sha256 == rel.manifest_sha256(manifest)
    with pytest.raises(rel.ReleaseError, match="already has its bundle"):
        rel.attach_bundle("0.1.0", manifest, path=path)


def test_a_tag_on_another_commit_is_refused(repo):
    git(repo, "tag", "v0.1.0", "HEAD")
    with pytest.raises(rel.ReleaseError, match="points at another commit"):
        rel.record("0.1.0", "HEAD~1", None, path=repo / "releases.yml", cwd=repo)


def test_a_change_target_names_the_checkout_and_the_bundle_commit_apart(repo, tmp_path, capsys):
    head, older = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    git(repo, "tag", "-a", "v0.1.0", "HEAD~2", "-m", "r")
    target = rel.change_target(bundle(tmp_path, head), repo)
    assert target["checkout_commit"] == target["bundle_source_commit"] == head
    assert target["checkout_describe"] == "v0.1.0-2-g" + head[:7]
    assert target["bundle_commit_allowed"] is False
    # A bundle of another commit: refused in one line naming both, unless its commit is named.
    other = bundle(tmp_path, older)
    with pytest.raises(rel.ReleaseError) as exc:
        rel.change_target(other, repo)
    assert str(exc.value).count("\n") == 0
    assert f"built from {older[:12]}, not from the checkout's HEAD {head[:12]}" in str(exc.value)
    assert "upgrade_allow_bundle_commit" in str(exc.value)
    with pytest.raises(rel.ReleaseError, match=f"the allowed commit {head[:8]} is not it"):
        rel.change_target(other, repo, head[:8])
    allowed = rel.change_target(other, repo, older[:8])
    assert (allowed["bundle_source_commit"], allowed["bundle_commit_allowed"]) == (older, True)
    # The CLI the playbooks call: JSON, or exit 2 with the one line.
    main(["release", "target", "--checkout", str(repo), "--manifest", str(other), "--allow-bundle-commit", older[:8]])
    assert json.loads(capsys.readouterr().out)["bundle_source_commit"] == older
    with pytest.raises(SystemExit) as exit_:
        main(["release", "target", "--checkout", str(repo), "--manifest", str(other)])
    assert exit_.value.code == 2
    assert f"built from {older[:12]}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("releases:\n  - {version: 0.1.0, commit: abc}\n", "commit must be 40"),
        ("releases:\n  - {version: x, commit: abc}\n", "MAJOR.MINOR.PATCH"),
        ("releases: 3\n", "expected a mapping"),
        (f"releases:\n  - {{version: 0.2.0, commit: {'a' * 40}}}\n  - {{version: 0.1.0, commit: {'b' * 40}}}\n",
         "oldest first"),
        (f"releases:\n  - {{version: 0.1.0, commit: {'a' * 40}, bundle_manifest_sha256: zz}}\n", "64 hex"),
        (f"releases:\n  - {{version: 0.1.0, commit: {'a' * 40}, colour: red}}\n", "unknown key"),
    ],
)  # fmt: skip
def test_invalid_files_are_named(tmp_path, text, message):
    path = tmp_path / "releases.yml"
    path.write_text(text)
    with pytest.raises(rel.ReleaseError, match=message):
        rel.load(path)


def test_the_repository_file_is_valid_and_its_commits_exist():
    found = rel.load()
    assert found, "releases.yml lists no release"
    for r in found:
        assert rel.git("cat-file", "-t", r.commit) == "commit"

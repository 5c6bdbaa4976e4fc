"""Build the offline artifact bundle: `python -m bundle.build` (what `make bundle` runs).

Every third-party artifact the roles install is built or fetched here once, on the controller, at the versions in
bundle/pins.toml, and written to dist/bundle/ with manifest.json, SHA256SUMS and a CycloneDX SBOM. Roles install
only from a served copy of it and verify each file against the manifest first (roles/artifact).

Components that no registry reachable here serves come from a site artifact directory (BUNDLE_ARTIFACTS_DIR: one
folder per component with the file and its SHA256SUMS, e.g. an internal artifact repository); each file is
checked against that SHA256SUMS before it enters the bundle, and recorded with origin `site-artifacts`.

Builds are cached outside the repository (CGT_BUNDLE_CACHE, default /var/cache/cgt-lakehouse/bundle), keyed by
what determines their content (module@version, the hash of a requirements list), so a rebuild with unchanged pins
only re-packs. Packing is deterministic (sorted members, fixed mtime/owner), so unchanged inputs give unchanged
sha256 sums.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINS = REPO / "bundle" / "pins.toml"
DEFAULT_CACHE = Path(os.environ.get("CGT_BUNDLE_CACHE", "/var/cache/cgt-lakehouse/bundle"))
SITE_ORIGIN = "site-artifacts"
PIP_VERSION = "24.3.1"  # the pip that downloads wheels (run through uv, never installed into a project venv)
PYTHON_VERSION = "3.11"
PLATFORM = "manylinux_2_28_x86_64"  # Debian 12 (glibc 2.36) x86_64; pip also accepts older manylinux tags


class BuildError(Exception):
    """A bundle input that cannot be satisfied; the message is the one line the user sees."""


@dataclass(frozen=True)
class Entry:
    component: str
    version: str
    origin: str
    file: str  # path relative to the bundle root
    license: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def deterministic_tar(src_dir: Path, dest: Path) -> None:
    """A .tar whose bytes depend only on the files' names and contents (wheels and jars are already compressed,
    so no gzip: it would cost minutes per rebuild and save almost nothing)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(src_dir)))
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with path.open("rb") as fh:
                tar.addfile(info, fh)


# --- Go binaries ------------------------------------------------------------------------------------------------


def go_binary_name(package: str) -> str:
    """The file `go install` writes for a main package: its last path element, a major-version suffix (/v7) skipped."""
    parts = package.split("/")
    if len(parts) > 1 and parts[-1][:1] == "v" and parts[-1][1:].isdigit():
        parts.pop()
    return parts[-1]


def go_ldflags(pin: dict) -> str:
    # -s -w: no symbol tables (smaller); -buildid= keeps the binary independent of the build machine; -X stamps the
    # pinned version into `--version` (the upstream build scripts do the same, go install alone prints DEVELOPMENT).
    # A variable is named relative to the module, or absolutely when it lives in package main (`main.version`).
    module = pin["module"]
    names = {var: var if var.startswith("main.") else f"{module}/{var}" for var in pin.get("x", {})}
    stamps = (f"-X {names[var]}={value}" for var, value in pin.get("x", {}).items())
    return " ".join(["-s -w -buildid=", *stamps])


def build_go_in_wrapper(pin: dict, package: str, ldflags: str, binary: Path, env: dict, work: Path) -> None:
    """`go install pkg@version` refuses a module whose go.mod has replace directives (Dex points its api/v2 module at
    a sub-directory that the module zip leaves out). Build it as a dependency of a generated main module instead:
    a dependency's replace directives are ignored, so every module comes from the Go module proxy at the version
    the pinned go.mod requires, and go.sum checks them against the checksum database."""
    wrapper = work / "go-wrapper" / pin["name"]
    shutil.rmtree(wrapper, ignore_errors=True)
    wrapper.mkdir(parents=True)
    (wrapper / "go.mod").write_text(f"module cgt-lakehouse.bundle/{pin['name']}\n\ngo 1.22\n")
    run(["go", "get", f"{package}@{pin['version']}"], cwd=wrapper, env=env)
    run(["go", "build", "-ldflags", ldflags, "-o", str(binary), package], cwd=wrapper, env=env)


def build_go(pin: dict, cache: Path, out: Path) -> Entry:
    name, module, version = pin["name"], pin["module"], pin["version"]
    package = pin.get("package", module)  # the main package, when it is not the module root
    ldflags = go_ldflags(pin)
    key = ldflags if package == module else f"{ldflags} {package}"
    gobin = cache / "go" / f"{name}@{version}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    binary = gobin / go_binary_name(package)
    if not binary.exists():
        env = {
            **os.environ,
            "GOBIN": str(gobin),
            "CGO_ENABLED": "0",
            "GOFLAGS": "-trimpath -mod=mod",
            "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org"),
        }
        if pin.get("wrapper_module", False):
            build_go_in_wrapper(pin, package, ldflags, binary, env, cache / "work")
        else:
            run(["go", "install", "-ldflags", ldflags, f"{package}@{version}"], env=env)
    dest = out / "bin" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, dest)
    dest.chmod(0o755)
    return Entry(name, version, f"go-module-proxy:{module}@{version}", f"bin/{name}", pin.get("license", ""))


# --- Marquez (Java) ---------------------------------------------------------------------------------------------

MARQUEZ_POM = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by bundle/build.py: resolves {group}:{artifact}:{version} and its runtime classpath. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cgt-lakehouse.bundle</groupId>
  <artifactId>{name}-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def build_maven(pin: dict, cache: Path, out: Path, work: Path, site_dir: Path | None) -> tuple[Entry, list[dict]]:
    """The pinned jar plus its runtime classpath, resolved by Maven from Maven Central, packed as lib/*.jar.
    Where Maven refuses it and the pin names a `site_artifact`, that runnable jar from the site artifact directory
    (checksum-verified) is the only member of lib/ instead; the role starts both the same way."""
    name, version = pin["name"], pin["version"]
    group, artifact = pin["coordinates"].split(":")
    stage = work / name
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "lib").mkdir(parents=True)
    # How the role starts it: java -cp 'lib/*' <main class> server marquez.yml
    (stage / "MAIN-CLASS").write_text(pin["main_class"] + "\n")
    dest = out / "java" / f"{name}.tar"
    lib = cache / "maven" / f"{name}@{version}" / "lib"
    if not (lib.parent / ".complete").exists():
        shutil.rmtree(lib.parent, ignore_errors=True)
        lib.mkdir(parents=True)
        pom = lib.parent / "pom.xml"
        pom.write_text(MARQUEZ_POM.format(name=name, group=group, artifact=artifact, version=version))
        # Pinned plugin version: the resolver itself is part of what makes the classpath reproducible.
        goal = f"org.apache.maven.plugins:maven-dependency-plugin:{pin['dependency_plugin']}:copy-dependencies"
        try:
            run(["mvn", "-B", "-q", "-U", "-f", str(pom), goal, "-DincludeScope=runtime", f"-DoutputDirectory={lib}"])
        except subprocess.CalledProcessError:
            if "site_artifact" not in pin:
                raise
            print(f"bundle: {pin['coordinates']}:{version} is not served by Maven here; taking the site artifact")
            jar = site_artifact(site_dir, name, pin["site_artifact"])
            shutil.copy2(jar, stage / "lib" / jar.name)
            deterministic_tar(stage, dest)
            origin = f"{SITE_ORIGIN}:{name}/{jar.name}"
            entry = Entry(name, version, origin, f"java/{name}.tar", pin["license"])
            return entry, [site_component(name, version, pin["license"], jar, origin)]
        (lib.parent / ".complete").write_text(datetime.now(UTC).isoformat())
    shutil.copytree(lib, stage / "lib", dirs_exist_ok=True)
    deterministic_tar(stage, dest)
    return Entry(name, version, f"maven-central:{pin['coordinates']}:{version}", f"java/{name}.tar", pin["license"]), []


# --- Site artifacts ---------------------------------------------------------------------------------------------


def site_artifact(site_dir: Path | None, component: str, filename: str) -> Path:
    """<site_dir>/<component>/<filename>, after checking it against <site_dir>/<component>/SHA256SUMS."""
    if site_dir is None:
        raise BuildError(f"{component}: no site artifact directory given (set BUNDLE_ARTIFACTS_DIR)")
    folder = site_dir / component
    path, sums = folder / filename, folder / "SHA256SUMS"
    if not path.is_file():
        raise BuildError(f"{component}: {path} does not exist (BUNDLE_ARTIFACTS_DIR={site_dir})")
    if not sums.is_file():
        raise BuildError(f"{component}: {sums} does not exist; a site artifact is taken only with its checksum")
    expected = {}
    for line in sums.read_text().splitlines():
        digest, _, listed = line.strip().partition("  ")
        expected[listed.lstrip("*")] = digest.lower()
    if filename not in expected:
        raise BuildError(f"{component}: {filename} is not listed in {sums}")
    actual = sha256_of(path)
    if actual != expected[filename]:
        raise BuildError(
            f"{component}: checksum mismatch for {path}: SHA256SUMS says {expected[filename]}, file is {actual}"
        )
    return path


def site_component(name: str, version: str, license_id: str, path: Path, origin: str) -> dict:
    return {
        "type": "application",
        "name": name,
        "version": version,
        "licenses": [{"license": {"id": license_id}}] if license_id else [],
        "hashes": [{"alg": "SHA-256", "content": sha256_of(path)}],
        "properties": [
            {"name": "cgt-lakehouse:file", "value": path.name},
            {"name": "cgt-lakehouse:origin", "value": origin},
        ],
    }


def build_site(pin: dict, out: Path, site_dir: Path | None) -> tuple[Entry, list[dict]]:
    """A file taken unchanged from the site artifact directory (its bytes keep the sha256 of its provenance record)."""
    name, version = pin["name"], pin["version"]
    path = site_artifact(site_dir, name, pin["file"])
    dest = out / "site" / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, dest)
    origin = f"{SITE_ORIGIN}:{name}/{path.name}"
    entry = Entry(name, version, origin, f"site/{path.name}", pin.get("license", ""))
    return entry, [site_component(name, version, pin.get("license", ""), path, origin)]


# --- Python wheelhouses -----------------------------------------------------------------------------------------


def requirements_for(pin: dict, work: Path) -> Path:
    if pin["requirements"] != "uv.lock":
        return REPO / pin["requirements"]
    reqs = work / f"{pin['name']}-requirements.txt"
    # The runtime dependencies of the pipelines package exactly as locked (no dev/deploy groups, no hashes:
    # pip download checks the wheels it fetches against the index; the bundle's own sums cover the result).
    run(
        [
            "uv",
            "export",
            "--frozen",
            "--no-dev",
            "--no-default-groups",
            "--no-emit-project",
            "--no-hashes",
            "--format",
            "requirements-txt",
            "-o",
            str(reqs),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    return reqs


def pip(*args: str) -> list[str]:
    # pip runs on CPython 3.11 so that environment markers in the lists are evaluated as on the VMs.
    return ["uv", "tool", "run", "--python", PYTHON_VERSION, "--from", f"pip=={PIP_VERSION}", "pip", *args]


def controller_is_target() -> bool:
    """True on Debian 12 x86_64 with CPython 3.11 available: a wheel compiled here runs on the VMs (ADR 0100)."""
    try:
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    except OSError:
        return False
    return (
        release.get("ID") == "debian"
        and release.get("VERSION_ID", "").strip('"') == "12"
        and os.uname().machine == "x86_64"
    )


def download_wheels(reqs: Path, wheel_dir: Path, native_sdists: frozenset[str] = frozenset()) -> None:
    """Binary wheels for the target platform. The few pure-Python projects that publish only an sdist are built into
    wheels here, on the controller, never on a VM. The lists are fully pinned, so --no-deps loses nothing.
    `native_sdists` names projects with C code and no wheel on PyPI (python-ldap): they are compiled here, which is
    only allowed on a controller that is the target platform (ADR 0100)."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={p}" for p in (PLATFORM, "manylinux2014_x86_64", "linux_x86_64")]
    run(
        pip(
            "download", "--quiet", "--no-deps", "--prefer-binary", f"--python-version={PYTHON_VERSION}",
            "--implementation=cp", *platforms, "-r", str(reqs), "-d", str(wheel_dir),
        )
    )  # fmt: skip
    for sdist in sorted(p for p in wheel_dir.iterdir() if p.name.endswith((".tar.gz", ".zip"))):
        before = set(wheel_dir.glob("*.whl"))
        run(pip("wheel", "--quiet", "--no-deps", "-w", str(wheel_dir), str(sdist)))
        for wheel in set(wheel_dir.glob("*.whl")) - before:
            if wheel.name.endswith("-none-any.whl"):
                continue
            project = wheel.name.split("-")[0].replace("_", "-").lower()
            if project not in native_sdists:
                raise BuildError(f"{sdist.name} has no wheel for the target and is not pure Python ({wheel.name})")
            if not (wheel.name.endswith("-cp311-cp311-linux_x86_64.whl") and controller_is_target()):
                raise BuildError(f"{sdist.name} must be compiled on a Debian 12 x86_64 controller (got {wheel.name})")
        sdist.unlink()


def build_wheelhouse(pin: dict, cache: Path, out: Path, work: Path) -> tuple[Entry, list[dict]]:
    name = pin["name"]
    reqs = requirements_for(pin, work)
    key = hashlib.sha256(reqs.read_bytes()).hexdigest()[:16]
    wheel_dir = cache / "wheels" / f"{name}-{key}"
    if not (wheel_dir / ".complete").exists():
        download_wheels(reqs, wheel_dir, frozenset(pin.get("native_sdists", [])))
        (wheel_dir / ".complete").write_text(datetime.now(UTC).isoformat())
    stage = work / name
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    for wheel in wheel_dir.glob("*.whl"):
        shutil.copy2(wheel, stage / wheel.name)
    shutil.copy2(reqs, stage / "requirements.txt")
    if pin["requirements"] == "uv.lock":
        run(["uv", "build", "--wheel", "--quiet", "-o", str(stage)], cwd=REPO)
    wheels = sorted(stage.glob("*.whl"))
    dest = out / "wheelhouse" / f"{name}.tar"
    deterministic_tar(stage, dest)
    components = [sbom_component(w) for w in wheels]
    version = f"{len(wheels)} wheels, requirements sha256 {key}"
    return Entry(name, version, "pypi:" + pin["requirements"], f"wheelhouse/{name}.tar"), components


def sbom_component(wheel: Path) -> dict:
    dist, version = wheel.name.split("-")[:2]
    pkg = dist.replace("_", "-").lower()
    return {
        "type": "library",
        "name": pkg,
        "version": version,
        "purl": f"pkg:pypi/{pkg}@{version}",
        "hashes": [{"alg": "SHA-256", "content": sha256_of(wheel)}],
        "properties": [{"name": "cgt-lakehouse:wheel", "value": wheel.name}],
    }


# --- bundle metadata --------------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_metadata(out: Path, entries: list[Entry], sbom: dict[str, list[dict]], others: list[dict] = ()) -> None:
    """manifest.json, sbom.cdx.json (wheels by wheelhouse, plus `others`: non-wheel components) and SHA256SUMS."""
    sbom_doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "component": {"type": "application", "name": "cgt-lakehouse-bundle", "version": git_commit()},
            "tools": [{"name": "bundle/build.py"}],
        },
        "components": [
            {**c, "properties": [*c["properties"], {"name": "cgt-lakehouse:wheelhouse", "value": house}]}
            for house, comps in sbom.items()
            for c in comps
        ]
        + list(others),
    }
    (out / "sbom.cdx.json").write_text(json.dumps(sbom_doc, indent=2, sort_keys=True) + "\n")
    manifest = {
        "bundle_format": 1,
        "source_commit": git_commit(),
        "artifacts": [
            {
                "component": e.component,
                "version": e.version,
                "origin": e.origin,
                "license": e.license,
                "file": e.file,
                "sha256": sha256_of(out / e.file),
                "size": (out / e.file).stat().st_size,
            }
            for e in entries
        ],
    }
    manifest["artifacts"].append(
        {
            "component": "sbom",
            "version": "CycloneDX 1.5",
            "origin": "bundle/build.py",
            "license": "",
            "file": "sbom.cdx.json",
            "sha256": sha256_of(out / "sbom.cdx.json"),
            "size": (out / "sbom.cdx.json").stat().st_size,
        }
    )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    files = ["manifest.json", *(a["file"] for a in manifest["artifacts"])]
    lines = [f"{sha256_of(out / f)}  {f}" for f in sorted(files)]
    (out / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def build(out: Path, cache: Path, only: set[str] | None = None, site_dir: Path | None = None) -> list[Entry]:
    pins = tomllib.loads(PINS.read_text())
    # Only what this build writes: a file of an earlier bundle must never be served under a new manifest.
    for old in ("bin", "java", "wheelhouse", "site"):
        shutil.rmtree(out / old, ignore_errors=True)
    for old in ("manifest.json", "SHA256SUMS", "sbom.cdx.json"):
        (out / old).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    work = cache / "work"
    work.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []
    sbom: dict[str, list[dict]] = {}
    others: list[dict] = []
    timings: dict[str, float] = {}
    for kind in ("go", "maven", "site", "wheelhouse"):
        for pin in pins.get(kind, []):
            if only and pin["name"] not in only:
                continue
            t0 = time.monotonic()
            if kind == "go":
                entries.append(build_go(pin, cache, out))
            elif kind == "wheelhouse":
                entry, sbom[pin["name"]] = build_wheelhouse(pin, cache, out, work)
                entries.append(entry)
            else:
                entry, components = (
                    build_maven(pin, cache, out, work, site_dir) if kind == "maven" else build_site(pin, out, site_dir)
                )
                entries.append(entry)
                others += components
            timings[pin["name"]] = time.monotonic() - t0
    write_metadata(out, entries, sbom, others)
    for name, seconds in timings.items():
        print(f"bundle: {name:22s} {seconds:7.1f} s")
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bundle.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "bundle")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--only", action="append", help="build only this component (repeatable)")
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=Path(os.environ["BUNDLE_ARTIFACTS_DIR"]) if os.environ.get("BUNDLE_ARTIFACTS_DIR") else None,
        help="site artifact directory (one folder per component with SHA256SUMS); default $BUNDLE_ARTIFACTS_DIR",
    )
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    try:
        build(args.out, args.cache, set(args.only) if args.only else None, args.artifacts_dir)
    except BuildError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"bundle: build step failed (exit {exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 1
    print(f"bundle: wrote {args.out} in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

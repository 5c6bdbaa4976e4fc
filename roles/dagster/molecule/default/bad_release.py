"""Make a copy of a bundle whose pipelines wheel cannot load (the dagster scenario's bad-release check).

The copy hard-links every file except the Dagster wheelhouse, which gets one more wheel: the pipelines package as
version 0.1.1 with a definitions module importing a module that is not shipped. manifest.json carries the new
sha256, so roles/artifact installs it like any release. Usage: bad_release.py BUNDLE OUT
"""

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

DIST_INFO = "cgt_lakehouse_pipelines-0.1.1.dist-info"
src, out = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out, copy_function=os.link)
manifest = json.loads((src / "manifest.json").read_text())
entry = next(a for a in manifest["artifacts"] if a["component"] == "dagster-wheelhouse")
tar_path = out / entry["file"]
tar_path.unlink()  # a hard link: never write through it into the real bundle
shutil.copyfile(src / entry["file"], tar_path)

with tarfile.open(src / entry["file"]) as tar:
    member = next(m for m in tar.getmembers() if re.search(r"cgt_lakehouse_pipelines-[^/]*\.whl$", m.name))
    good = tar.extractfile(member).read()
bad = out / "bad.whl"
with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        name = re.sub(
            r"^cgt_lakehouse_pipelines-[^/]+\.dist-info", "cgt_lakehouse_pipelines-0.1.1.dist-info", info.filename
        )
        if name == "pipelines/definitions.py":
            data += b"\nimport pipelines.defs.not_shipped  # noqa: E402,F401  (broken on purpose)\n"
        if name.endswith(".dist-info/METADATA"):
            data = re.sub(rb"(?m)^Version: .*$", b"Version: 0.1.1", data)
        if name.endswith(".dist-info/RECORD"):
            data = b""  # uv does not need the hashes of this throwaway wheel
        zout.writestr(name, data)
with tarfile.open(tar_path, "a") as tar:
    tar.add(bad, arcname=str(Path(member.name).parent / "cgt_lakehouse_pipelines-0.1.1-py3-none-any.whl"))
bad.unlink()

entry["sha256"] = hashlib.sha256(tar_path.read_bytes()).hexdigest()
entry["size"] = tar_path.stat().st_size
(out / "manifest.json").unlink()
(out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
print(f"bad bundle at {out}: {entry['file']} sha256 {entry['sha256'][:12]}")

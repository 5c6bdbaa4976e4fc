#!/usr/bin/python
# Copyright: CGT Lakehouse contributors
# License: Apache-2.0
"""Converge MinIO buckets, IAM policies and users with `mc`, querying before every change."""

import json
import os
import subprocess
from urllib.parse import quote, urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: minio_state
short_description: Converge MinIO buckets, policies and users with mc (query first, change only what differs)
description:
  - Reads the current state with C(mc --json) and runs a change command only where it differs from the desired
    state, so C(changed) is true exactly when something was changed (or, in check mode, would be).
  - Credentials reach mc through C(MC_HOST_<alias>) in the child environment and secrets through stdin; nothing is
    written to disk and no secret appears in a process list.
  - Never deletes buckets, objects, policies or users that are not listed, never suspends versioning, and never
    lowers a retention it did not set (a change of mode or days is applied as the new default for new versions).
options:
  mc:
    description: Path of the mc binary.
    type: path
    required: true
  config_dir:
    description: mc config dir; its certs/CAs/ holds the CA that signed the server certificate.
    type: path
    required: true
  url:
    description: Server URL (https://host:port).
    type: str
    required: true
  access_key:
    description: Root (or admin) access key.
    type: str
    required: true
  secret_key:
    description: Root (or admin) secret key.
    type: str
    required: true
  buckets:
    description: Buckets, each with name, versioning (bool), object_lock (bool), retention ({mode, days} or null).
    type: list
    elements: dict
    default: []
  policies:
    description: IAM policies, name to policy document.
    type: dict
    default: {}
  users:
    description: Users, each with name, secret and policies (list of names).
    type: list
    elements: dict
    default: []
author: CGT Lakehouse contributors
"""

EXAMPLES = r"""
- name: Converge the lakehouse buckets, policies and accounts
  minio_state:
    mc: /opt/minio/bin/mc
    config_dir: /etc/minio/mc
    url: https://minio.example.org:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    buckets:
      - {name: raw, versioning: true, object_lock: true, retention: {mode: GOVERNANCE, days: 30}}
    policies: {}
    users: []
"""

RETURN = r"""
actions:
  description: What was changed (or would be, in check mode), one line each.
  returned: always
  type: list
  elements: str
"""


ALIAS = "lakehouse"


class McError(Exception):
    pass


class Mc:
    """Thin runner for mc with --json output; each call sees only the credentials it needs."""

    def __init__(self, binary, config_dir, url):
        self.binary = binary
        self.config_dir = config_dir
        self.url = url

    def _env(self, alias, access_key, secret_key):
        parts = urlsplit(self.url)
        netloc = f"{quote(access_key, safe='')}:{quote(secret_key, safe='')}@{parts.netloc}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MC_HOST_")}
        env[f"MC_HOST_{alias}"] = urlunsplit((parts.scheme, netloc, "", "", ""))
        env["MC_DISABLE_PAGER"] = "1"
        return env

    def run(self, args, creds, stdin=None, alias=ALIAS):
        cmd = [self.binary, "--config-dir", self.config_dir, "--json", "--no-color", *args]
        proc = subprocess.run(  # noqa: S603 - fixed binary, no shell
            cmd, input=stdin, capture_output=True, text=True, env=self._env(alias, *creds), timeout=120
        )
        return proc.returncode, json_values(proc.stdout), proc.stdout + proc.stderr


def json_values(text):
    """Every JSON object in mc's output: one per line when piped, indented when mc thinks it has a terminal."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while True:
        pos = text.find("{", pos)
        if pos < 0:
            return docs
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos += 1
            continue
        docs.append(doc)


def error_text(docs, raw):
    for doc in docs:
        if doc.get("status") == "error":
            err = doc.get("error", {})
            cause = err.get("cause", {}) if isinstance(err, dict) else {}
            return json.dumps({"message": err.get("message") if isinstance(err, dict) else err, "cause": cause})
    return raw.strip()[-2000:]


def canonical(value):
    """Order-insensitive form of a policy document: MinIO re-serialises policies (single values as lists, sets)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items()) if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def as_list(value):
    return value if isinstance(value, list) else [value]


def normalise_policy(doc):
    statements = []
    for st in as_list(doc.get("Statement", [])):
        st = dict(st)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in st:
                st[key] = sorted(set(as_list(st[key])))
        st.pop("Sid", None)  # MinIO drops Sids it does not need; they carry no permission
        statements.append(st)
    return canonical({"Version": doc.get("Version", "2012-10-17"), "Statement": statements})


class Converger:
    def __init__(self, module):
        self.module = module
        p = module.params
        self.mc = Mc(p["mc"], p["config_dir"], p["url"])
        self.root = (p["access_key"], p["secret_key"])
        self.check = module.check_mode
        self.actions = []

    def query(self, args, what):
        rc, docs, raw = self.mc.run(args, self.root)
        if rc != 0:
            self.module.fail_json(msg=f"minio: cannot read {what}: {error_text(docs, raw)}", actions=self.actions)
        return docs

    def change(self, args, summary, stdin=None):
        self.actions.append(summary)
        if self.check:
            return
        rc, docs, raw = self.mc.run(args, self.root, stdin=stdin)
        if rc != 0:
            self.module.fail_json(msg=f"minio: {summary} failed: {error_text(docs, raw)}", actions=self.actions)

    # --- buckets ---------------------------------------------------------------------------------------------
    def buckets(self, wanted):
        existing = {d["key"].rstrip("/") for d in self.query(["ls", ALIAS], "buckets") if d.get("key")}
        for b in wanted:
            name, target = b["name"], f"{ALIAS}/{b['name']}"
            lock = bool(b.get("object_lock"))
            created = name not in existing
            if created:
                self.change(
                    ["mb", *(["--with-lock"] if lock else []), target],
                    f"create bucket {name}" + (" with object lock" if lock else ""),
                )
            if created and self.check:
                # Nothing to query yet; report what the new bucket would still need.
                if b.get("versioning") and not lock:
                    self.actions.append(f"enable versioning on {name}")
                if b.get("retention"):
                    self.actions.append(f"set default retention on {name}")
                continue
            if lock and not created:
                # mc exits non-zero when the bucket has no object lock configuration at all.
                _, info, _ = self.mc.run(["retention", "info", "--default", target], self.root)
                if not any(d.get("enabled") == "Enabled" for d in info):
                    self.module.fail_json(
                        msg=f"minio: bucket {name} exists without object lock; MinIO can enable it only at creation. "
                        f"Move its objects to a new bucket created with object lock (see the role README).",
                        actions=self.actions,
                    )
            if b.get("versioning"):
                info = self.query(["version", "info", target], f"versioning of {name}")
                status = next((d.get("versioning", {}).get("status") for d in info if "versioning" in d), "")
                if status != "Enabled":
                    self.change(["version", "enable", target], f"enable versioning on {name}")
            if b.get("retention"):
                self.retention(name, target, b["retention"])

    def retention(self, name, target, want):
        mode, days = want["mode"].upper(), int(want["days"])
        info = self.query(["retention", "info", "--default", target], f"default retention of {name}")
        doc = next((d for d in info if d.get("status") == "success"), {})
        current_mode = (doc.get("mode") or "").upper()
        validity = (doc.get("validity") or "").upper().replace(" ", "")
        if current_mode != mode or validity != f"{days}DAYS":
            self.change(
                ["retention", "set", "--default", mode, f"{days}d", target],
                f"set default retention on {name} to {mode} {days}d (was {current_mode or 'none'} "
                f"{validity or ''})".rstrip(),
            )

    # --- policies --------------------------------------------------------------------------------------------
    def policies(self, wanted):
        for name, doc in sorted(wanted.items()):
            rc, docs, raw = self.mc.run(["admin", "policy", "info", ALIAS, name], self.root)
            current = None
            if rc == 0:
                info = next((d for d in docs if d.get("status") == "success"), {})
                current = (info.get("policyInfo") or {}).get("Policy")
            elif "not found" not in raw.lower() and "does not exist" not in raw.lower():
                self.module.fail_json(msg=f"minio: cannot read policy {name}: {error_text(docs, raw)}")
            if current is not None and normalise_policy(current) == normalise_policy(doc):
                continue
            path = os.path.join(self.module.tmpdir, f"policy-{name}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
            self.change(
                ["admin", "policy", "create", ALIAS, name, path],
                f"{'create' if current is None else 'update'} policy {name}",
            )

    # --- users -----------------------------------------------------------------------------------------------
    def credentials_work(self, name, secret):
        """True when name/secret authenticate. An authorisation refusal still proves the secret is right."""
        rc, docs, raw = self.mc.run(["ls", "probe"], (name, secret), alias="probe")
        if rc == 0:
            return True
        return "AccessDenied" in raw or "Access Denied" in raw

    def users(self, wanted):
        listed = self.query(["admin", "user", "list", ALIAS], "users")
        existing = {d["accessKey"]: d for d in listed if d.get("accessKey")}
        for u in wanted:
            name, secret, want_policies = u["name"], u["secret"], set(u.get("policies") or [])
            if name not in existing:
                self.change(["admin", "user", "add", ALIAS, name], f"create user {name}", stdin=secret + "\n")
                current_policies, status = set(), "enabled"
            else:
                info = self.query(["admin", "user", "info", ALIAS, name], f"user {name}")
                doc = next((d for d in info if d.get("status") == "success"), {})
                current_policies = {p for p in (doc.get("policyName") or "").split(",") if p}
                status = doc.get("userStatus", "enabled")
                if not self.credentials_work(name, secret):
                    # `user add` on an existing user replaces its secret and keeps its policies.
                    self.change(
                        ["admin", "user", "add", ALIAS, name], f"reset secret of user {name}", stdin=secret + "\n"
                    )
            if status != "enabled":
                self.change(["admin", "user", "enable", ALIAS, name], f"enable user {name}")
            missing, extra = sorted(want_policies - current_policies), sorted(current_policies - want_policies)
            if missing:
                self.change(
                    ["admin", "policy", "attach", ALIAS, *missing, "--user", name],
                    f"attach {','.join(missing)} to {name}",
                )
            if extra:
                self.change(
                    ["admin", "policy", "detach", ALIAS, *extra, "--user", name],
                    f"detach {','.join(extra)} from {name}",
                )


def main():
    module = AnsibleModule(
        argument_spec={
            "mc": {"type": "path", "required": True},
            "config_dir": {"type": "path", "required": True},
            "url": {"type": "str", "required": True},
            "access_key": {"type": "str", "required": True, "no_log": True},
            "secret_key": {"type": "str", "required": True, "no_log": True},
            "policies": {"type": "dict", "default": {}},
            "buckets": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "versioning": {"type": "bool", "default": False},
                    "object_lock": {"type": "bool", "default": False},
                    "retention": {"type": "dict", "default": None},
                },
            },
            "users": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "secret": {"type": "str", "required": True, "no_log": True},
                    "policies": {"type": "list", "elements": "str", "default": []},
                },
            },
        },
        supports_check_mode=True,
    )
    conv = Converger(module)
    conv.buckets(module.params["buckets"])
    conv.policies(module.params["policies"])
    conv.users(module.params["users"])
    module.exit_json(changed=bool(conv.actions), actions=conv.actions)


if __name__ == "__main__":
    main()

"""Converge Superset's custom roles and the optional local administrator (role `superset`, tasks/security.yml).

Run with the Superset venv's Python through superset-cli (service user, service settings). Reads JSON on stdin:

    {"roles": [{"name": "Viewer", "drop": ["can_write", ...], "add_roles": []}, ...],
     "databases": ["CGT marts"],
     "admin": {"enabled": false, "username": "...", "email": "...", "password": "..."}}

Each role gets exactly: Gamma's permissions minus those whose permission name is in `drop`, plus every permission
of the roles in `add_roles`, plus `database_access` on each database named in `databases`. Nothing else, so a
permission added by hand is removed at the next run (roles as code). The admin account is created or updated when
enabled, and deactivated (never deleted: its history stays) when disabled.

Prints one JSON line {"changed": bool, "actions": [...]}; `--check` reports the same without committing.
Bad input: one line on stderr, exit 1.
"""

from __future__ import annotations

import json
import sys


def _fail(message: str) -> None:
    print(f"superset_security: {message}", file=sys.stderr)
    sys.exit(1)


def converge(spec: dict, check: bool) -> list[str]:
    from superset import security_manager as sm
    from superset.extensions import db
    from superset.models.core import Database
    from werkzeug.security import check_password_hash

    actions: list[str] = []
    gamma = sm.find_role("Gamma")
    if gamma is None:
        _fail("the Gamma role does not exist: run `superset init` first")

    data_perms = []
    for name in spec.get("databases", []):
        database = db.session.query(Database).filter_by(database_name=name).one_or_none()
        if database is None:
            _fail(f"database {name!r} does not exist in Superset (import the dashboards first)")
        pv = sm.find_permission_view_menu("database_access", database.perm)
        if pv is None:
            _fail(f"no database_access permission for {database.perm}")
        data_perms.append(pv)

    for wanted_role in spec["roles"]:
        drop = set(wanted_role.get("drop", []))
        wanted = {pv for pv in gamma.permissions if pv.permission.name not in drop}
        for extra in wanted_role.get("add_roles", []):
            other = sm.find_role(extra)
            if other is None:
                _fail(f"role {extra!r} (add_roles of {wanted_role['name']!r}) does not exist")
            wanted |= set(other.permissions)
        wanted |= set(data_perms)
        role = sm.find_role(wanted_role["name"])
        if role is None:
            actions.append(f"create role {wanted_role['name']}")
            if check:
                continue
            role = sm.add_role(wanted_role["name"])
        current = set(role.permissions)
        if current != wanted:
            added, removed = len(wanted - current), len(current - wanted)
            actions.append(f"set permissions of {role.name}: +{added} -{removed}")
            role.permissions = sorted(wanted, key=lambda pv: pv.id)

    admin = spec.get("admin") or {}
    user = sm.find_user(username=admin.get("username")) if admin.get("username") else None
    if admin.get("enabled"):
        admin_role = sm.find_role("Admin")
        if user is None:
            actions.append(f"create local admin {admin['username']}")
            if not check and not sm.add_user(
                username=admin["username"], first_name="Local", last_name="Administrator", email=admin["email"],
                role=admin_role, password=admin["password"],
            ):  # fmt: skip
                _fail(f"could not create the local admin {admin['username']}")
        else:
            if not user.password or not check_password_hash(user.password, admin["password"]):
                actions.append(f"set password of {user.username}")
                if not check:
                    sm.reset_password(user.id, admin["password"])
            if not user.active or admin_role not in user.roles or user.email != admin["email"]:
                actions.append(f"activate {user.username} as Admin")
                user.active, user.email = True, admin["email"]
                if admin_role not in user.roles:
                    user.roles.append(admin_role)
    elif user is not None and user.active:
        actions.append(f"deactivate local admin {user.username}")
        user.active = False

    if check:
        db.session.rollback()
    else:
        db.session.commit()
    return actions


def main() -> None:
    check = "--check" in sys.argv[1:]
    try:
        spec = json.load(sys.stdin)
        if not isinstance(spec.get("roles"), list):
            raise ValueError("'roles' must be a list")
    except (json.JSONDecodeError, ValueError, AttributeError) as exc:
        _fail(f"bad input on stdin: {exc}")
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        actions = converge(spec, check)
    print(json.dumps({"changed": bool(actions), "actions": actions}))


if __name__ == "__main__":
    main()

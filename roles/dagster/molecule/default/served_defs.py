"""Compare what the webserver serves (GraphQL answer on stdin) with what the repository's definitions declare.

Prints the counts; exits 1 naming what is missing or extra. Run with the checkout's venv (same code as the wheel).
"""

import json
import sys

from pipelines.definitions import defs

graph = defs().resolve_asset_graph()
want_assets = {k.to_user_string() for k in graph.get_all_asset_keys()}
want_checks = {f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys}

nodes = json.load(sys.stdin)["data"]["assetNodes"]
served_assets = {"/".join(n["assetKey"]["path"]) for n in nodes}
served_checks = {
    "/".join(n["assetKey"]["path"]) + ":" + c["name"]
    for n in nodes
    for c in (n.get("assetChecksOrError") or {}).get("checks", [])
}
problems = {
    "assets missing": sorted(want_assets - served_assets),
    "assets extra": sorted(served_assets - want_assets),
    "checks missing": sorted(want_checks - served_checks),
    "checks extra": sorted(served_checks - want_checks),
}
problems = {k: v for k, v in problems.items() if v}
print(json.dumps({"assets": len(served_assets), "checks": len(served_checks), "problems": problems}))
sys.exit(1 if problems or not want_assets or not want_checks else 0)

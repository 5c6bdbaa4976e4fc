"""The lab identity provider as a machine client sees it (shared by proxy_checks.py and lineage_checks.py)."""

from __future__ import annotations

import requests


def service_token(issuer: str, username: str, password: str, client: tuple[str, str], ca: str) -> str:
    """An ID token for a named service account (Dex's password grant for the pipelines' machine client), as the
    lineage transport sends it to the proxy (`Authorization: Bearer`)."""
    response = requests.post(
        issuer.rstrip("/") + "/token",
        data={"grant_type": "password", "username": username, "password": password, "scope": "openid email groups"},
        auth=client,
        verify=ca,
        timeout=30,
    )
    if response.status_code != 200:
        raise AssertionError(f"password grant for {username}: HTTP {response.status_code} {response.text[:200]}")
    return response.json()["id_token"]

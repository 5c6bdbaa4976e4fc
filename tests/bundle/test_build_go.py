"""How bundle/build.py names and stamps Go binaries (pure functions: no Go toolchain, no network)."""

from __future__ import annotations

import tomllib

import pytest

from bundle.build import PINS, go_binary_name, go_ldflags


@pytest.mark.parametrize(
    ("package", "binary"),
    [
        ("github.com/minio/minio", "minio"),
        ("github.com/oauth2-proxy/oauth2-proxy/v7", "oauth2-proxy"),
        ("github.com/dexidp/dex/cmd/dex", "dex"),
        ("example.com/tools/v2ray", "v2ray"),
    ],
)
def test_binary_is_named_like_go_install_names_it(package: str, binary: str):
    assert go_binary_name(package) == binary


def test_version_stamps_are_relative_to_the_module_except_in_package_main():
    pin = {"module": "github.com/x/y/v7", "x": {"pkg/version.VERSION": "v7.1.0", "main.version": "v7.1.0"}}
    flags = go_ldflags(pin)
    assert "-X github.com/x/y/v7/pkg/version.VERSION=v7.1.0" in flags
    assert "-X main.version=v7.1.0" in flags
    assert flags.startswith("-s -w -buildid=")


def test_every_go_pin_names_its_module_version_and_license():
    for pin in tomllib.loads(PINS.read_text())["go"]:
        assert {"name", "module", "version", "license"} <= pin.keys(), pin["name"]
        assert pin.get("package", pin["module"]).startswith(pin["module"]), pin["name"]

"""Client text shown safely, and URLs logged without the credentials sent in them."""

from __future__ import annotations

import pytest

from pxed.text import printable, quoted, redacted

SIGNATURE = "0123abcd" * 4


def test_control_characters_and_undecodable_bytes_are_escaped():
    assert printable("web\r\x1b[2J\udcff") == "web\\x0d\\x1b[2J\\xff"
    assert quoted('a"b\\') == '"a\\"b\\\\"'


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/api/hosts/m/done?token=s3cr3t&b=2", "/api/hosts/m/done?token=<redacted>&b=2"),
        (f"/ks/52:54:00:12:34:57/{SIGNATURE}", "/ks/52:54:00:12:34:57/<redacted>"),
        (f"/preseed/52:54:00:12:34:57/{SIGNATURE}", "/preseed/52:54:00:12:34:57/<redacted>"),
        ("/ks/52:54:00:12:34:57", "/ks/52:54:00:12:34:57"),
        ("/trees/x/ks/a/b", "/trees/x/ks/a/b"),
    ],
)
def test_a_logged_url_never_keeps_a_token_or_a_kickstart_signature(url: str, shown: str):
    assert redacted(url) == shown

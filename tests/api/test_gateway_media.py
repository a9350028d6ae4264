"""Issue 19: media up and down through the gateway, within WeCom's limits, streamed.

The limits (image 10 MB, voice 2 MB, video 10 MB, file 20 MB) are enforced before
anything is sent: an upload one byte over answers 413 and the simulator receives
nothing. "Never held whole in memory" is measured on a real gunicorn worker: its peak
resident memory (VmHWM) while a 20 MB file goes up and comes back down grows by far
less than the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tenants import credentials
from tests.api.gateway_support import gateway_tenant
from tests.support import gunicorn_server
from tests.tenants.test_tokens import child_env
from wecom.gateway import MEDIA_LIMITS


@pytest.mark.django_db
def test_an_upload_and_its_download_round_trip(platform):
    tenant = gateway_tenant(platform)
    data = os.urandom(300_000)
    up = tenant.upload("image", "photo.png", data, "image/png")
    assert up.status_code == 200, up.content
    assert up["X-Wecom-Errcode"] == "0"
    media_id = up.json()["media_id"]
    stored = platform.sandbox.state.corp_data.media[media_id]
    assert (stored.data, stored.filename, stored.content_type) == (data, "photo.png", "image/png")

    down = tenant.get("media/get", media_id=media_id)
    assert down.status_code == 200
    assert down.streaming  # passed on chunk by chunk, not buffered
    assert b"".join(down.streaming_content) == data
    assert down["Content-Type"] == "image/png"
    assert down["Content-Length"] == str(len(data))
    assert 'filename="photo.png"' in down["Content-Disposition"]
    assert down["X-Wecom-Errcode"] == "0"

    missing = tenant.get("media/get", media_id="3nosuchmedia")
    assert missing.status_code == 200
    assert missing["X-Wecom-Errcode"] == "40007"  # WeCom's JSON refusal, unchanged


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", sorted(MEDIA_LIMITS))
def test_one_byte_over_the_limit_is_413_and_nothing_is_sent(platform, media_type):
    tenant = gateway_tenant(platform)
    limit = MEDIA_LIMITS[media_type]
    hits = tenant.hits
    over = tenant.upload(media_type, "big.bin", b"\0" * (limit + 1), "application/octet-stream")
    assert over.status_code == 413, over.content
    assert over.json()["error"]["code"] == "body_too_large"
    assert tenant.hits == hits
    if media_type == "voice":  # exactly at the limit goes through (small enough to test)
        at = tenant.upload(media_type, "max.amr", b"\1" * limit, "audio/amr")
        assert at["X-Wecom-Errcode"] == "0"


@pytest.mark.django_db
def test_a_declared_length_over_the_limit_is_refused_unread(platform):
    tenant = gateway_tenant(platform)
    hits = tenant.hits
    response = tenant.caller.http.generic(
        "POST",
        tenant.url("media/upload") + "?type=voice",
        b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert tenant.hits == hits


@pytest.mark.django_db
def test_an_upload_needs_exactly_one_file_in_the_media_field(platform):
    from django.core.files.uploadedfile import SimpleUploadedFile

    tenant = gateway_tenant(platform)
    hits = tenant.hits
    url = tenant.url("media/upload") + "?type=file"
    http = tenant.caller.http

    def file(name: str) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, b"hello world", content_type="text/plain")

    assert http.post(url, {"file": file("a.txt")}).status_code == 400
    assert http.post(url, {"media": [file("a.txt"), file("b.txt")]}).status_code == 400
    assert http.post(url, {"media": file("a.txt"), "x": file("b.txt")}).status_code == 400
    assert tenant.hits == hits
    assert http.post(url, {"media": file("a.txt")})["X-Wecom-Errcode"] == "0"


def _worker_pid(master: int) -> int:
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{master}\n" in text:
            return int(status.parent.name)
    raise AssertionError("no gunicorn worker found")


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.django_db(transaction=True)
def test_a_20_mb_file_goes_up_and_down_without_the_worker_holding_it(platform, tmp_path):
    tenant = gateway_tenant(platform)
    credentials.token_get(tenant.authorization)
    big = tmp_path / "big.bin"
    size = MEDIA_LIMITS["file"]
    with big.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    headers = {"Authorization": f"Bearer {tenant.caller.key}"}
    with (
        gunicorn_server(child_env(platform), workers=1) as web,
        httpx.Client(base_url=web.url, headers=headers, timeout=60, trust_env=False) as http,
    ):
        worker = _worker_pid(web.process.pid)

        def round_trip(path: Path) -> str:
            with path.open("rb") as stream:  # httpx streams the file from disk
                up = http.post(
                    tenant.url("media/upload"),
                    params={"type": "file"},
                    files={"media": (path.name, stream, "application/octet-stream")},
                )
            assert up.status_code == 200, up.text
            sha = hashlib.sha256()
            with http.stream(
                "GET", tenant.url("media/get"), params={"media_id": up.json()["media_id"]}
            ) as down:
                assert down.status_code == 200
                for chunk in down.iter_bytes():
                    sha.update(chunk)
            return sha.hexdigest()

        small = tmp_path / "small.bin"
        small.write_bytes(os.urandom(200_000))
        round_trip(small)  # warm the worker: imports, connection pools
        before = _peak_kb(worker)
        assert round_trip(big) == digest
        grown_kb = _peak_kb(worker) - before
    # Holding the file whole even once would add 20 MB; chunks are 64 kB.
    assert grown_kb < 8 * 1024, f"peak memory grew by {grown_kb} kB"

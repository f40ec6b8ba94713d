"""CALIB_URL + CALIB_SHA256: a pinned archive from a local HTTP server on 127.0.0.1 (no internet here)."""
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from mobilenet_edge.calibration.download import fetch_calibration
from mobilenet_edge.calibration.images import find_images
from mobilenet_edge.pipeline.errors import PipelineError


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on a free port; yields (base URL, folder, request log)."""
    www = tmp_path / "www"
    www.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(www), **k)

        def log_message(self, fmt, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www, requests
    httpd.shutdown()
    httpd.server_close()


def _archive(folder) -> str:
    """A .tar.gz of three tiny images; returns its sha256."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(3):
            png = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(png, format="PNG")
            info = tarfile.TarInfo(f"sample/n0144076{i}/img{i}.png")
            info.size = len(png.getvalue())
            tar.addfile(info, io.BytesIO(png.getvalue()))
    data = buf.getvalue()
    (folder / "calib.tar.gz").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_pinned_download_is_checked_cached_and_unpacked(server, tmp_path):
    url, www, requests = server
    sha = _archive(www)
    cache = tmp_path / "cache"
    folder = fetch_calibration(f"{url}/calib.tar.gz", sha, cache, progress=False)
    assert len(find_images(folder)) == 3 and len(requests) == 1
    again = fetch_calibration(f"{url}/calib.tar.gz", sha, cache, progress=False)
    assert again == folder and len(requests) == 1  # the cache answers; no second download


def test_wrong_sha256_keeps_nothing(server, tmp_path):
    url, www, _ = server
    sha = _archive(www)
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(PipelineError, match=f"expected sha256 {wrong}.*received {sha}"):
        fetch_calibration(f"{url}/calib.tar.gz", wrong, cache, progress=False)
    assert not any(p.name != ".complete" for p in (cache / "calibration").iterdir())
    with pytest.raises(PipelineError, match="expected to download"):
        fetch_calibration(f"{url}/missing.tar.gz", sha, cache, progress=False)
    with pytest.raises(PipelineError, match="64-hex-digit"):
        fetch_calibration(f"{url}/calib.tar.gz", "abc", cache, progress=False)

"""GET /v1/docs: Swagger UI from bundled assets (no CDN, works offline), rendered by headless Chromium."""

import asyncio
import re
import shutil
import tempfile

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]
ASSETS = {"/v1/docs/docs.js": "text/javascript; charset=UTF-8",
          "/v1/docs/swagger-ui-bundle.js": "text/javascript; charset=UTF-8",
          "/v1/docs/swagger-ui.css": "text/css; charset=UTF-8"}
OPERATION_RE = re.compile(r'opblock-summary-method">([A-Z]+)</span>.{0,200}?data-path="([^"]+)"')


@pytest.mark.gen_test
async def test_the_page_is_html_with_a_strict_policy_and_local_assets_only(api):
    page = await api.get("/v1/docs")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    # blob: only for images: Swagger UI shows an image answer (GET /v1/pets/{pet_id}/photo) through an object URL.
    assert directives["img-src"] == "'self' data: blob:"
    assert [name for name, sources in directives.items() if "blob:" in sources] == ["img-src"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.raw.decode()
    assert not re.search(r"https?://", html)  # no CDN, nothing from elsewhere
    assert re.findall(r"<script[^>]*>\s*</script>", html) == [
        '<script src="/v1/docs/swagger-ui-bundle.js" charset="UTF-8"></script>',
        '<script src="/v1/docs/docs.js" charset="UTF-8"></script>']  # no inline script
    assert set(re.findall(r'(?:src|href)="(/v1/docs/[^"]+)"', html)) == set(ASSETS)
    assert '<link rel="icon" href="data:,">' in html  # an empty icon (img-src data:): no /favicon.ico 404 per visit
    for path, media_type in ASSETS.items():
        asset = await api.get(path)
        assert asset.status == 200, path
        assert asset.headers["Content-Type"] == media_type
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert len(asset.raw) > 300
        again = await api.get(path, headers={"If-None-Match": asset.headers["ETag"]})
        assert again.status == 304 and again.raw == b""
    bundle = await api.get("/v1/docs/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.raw and b"//# sourceMappingURL" not in bundle.raw[-200:]
    assert (await api.post("/v1/docs", json={})).status == 405


async def render(url: str) -> tuple[str, str]:
    """The DOM of the page after its scripts ran, and Chromium's log (console messages included).
    Every host but localhost resolves to nothing, so any request to a CDN would fail."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed: apt-get install chromium (scripts/test.sh does)"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost", "--virtual-time-budget=20000",
            "--dump-dom", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout=90)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.gen_test(timeout=120)
async def test_headless_chromium_renders_every_operation_offline(api, base_url):
    dom, log = await render(f"{base_url}/v1/docs")
    rendered = set(OPERATION_RE.findall(dom))
    document = (await api.get("/v1/openapi.json")).body
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert ("POST", "/v1/pets") in rendered and ("PATCH", "/v1/pets/{pet_id}") in rendered, dom[-2000:]
    assert rendered == documented
    assert "OAS 3.1" in dom and ">pet-api<" in dom
    assert "Failed to load API definition" not in dom
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []  # no CSP violation, no script error, no failed fetch

#!/usr/bin/env bash
# What the documentation tests need besides .venv: mermaid.js bundled into the site (the
# Material theme would load it from a CDN, unreachable in CI) and headless Chromium with its
# WebDriver (Debian's chromium / chromium-driver) for the screenshot test. Called by
# scripts/test.sh; idempotent, quiet, and a no-op (no network) when both are there already.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# mermaid from the npm registry, pinned by version and by the registry's sha512 integrity.
MERMAID_VERSION="11.17.2"
MERMAID_INTEGRITY="sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
# The site loads docs/assets/vendor/mermaid/mermaid.min.js (mkdocs.yml); VERSION says which.
vendor="$repo/docs/assets/vendor/mermaid"
if [ ! -s "$vendor/mermaid.min.js" ] || [ "$(cat "$vendor/VERSION" 2>/dev/null)" != "$MERMAID_VERSION" ]; then
    echo "docs_setup.sh: fetching mermaid $MERMAID_VERSION from the npm registry" >&2
    mkdir -p "$vendor"
    # Download, check the registry's integrity hash, extract: Python's standard library only.
    python3 - "$MERMAID_VERSION" "$MERMAID_INTEGRITY" "$vendor" <<'PY'
import base64, hashlib, io, sys, tarfile, urllib.request
version, integrity, vendor = sys.argv[1:4]
url = f"https://registry.npmjs.org/mermaid/-/mermaid-{version}.tgz"
with urllib.request.urlopen(url, timeout=120) as response:
    tarball = response.read()
actual = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
if actual != integrity:
    sys.exit(f"docs_setup.sh: mermaid tarball integrity {actual} != {integrity}")
with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
    for name in ("package/dist/mermaid.min.js", "package/LICENSE"):
        data = archive.extractfile(name).read()
        with open(f"{vendor}/{name.rsplit('/', 1)[-1]}", "wb") as out:
            out.write(data)
PY
    echo "$MERMAID_VERSION" >"$vendor/VERSION"
fi

have_chromium() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if have_chromium; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "docs_setup.sh: chromium / chromedriver missing and apt-get unusable here (not root?):" \
        "the docs screenshot test will be skipped" >&2
    if [ -n "${CI:-}" ]; then exit 1; fi  # CI must install them: fail, do not skip
    exit 0
fi
echo "docs_setup.sh: installing chromium and chromium-driver from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
rm -f "$log"
have_chromium

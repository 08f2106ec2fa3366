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
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    tarball="$work/mermaid.tgz"
    python3 - "$MERMAID_VERSION" "$tarball" <<'PY'
import sys, urllib.request
version, target = sys.argv[1], sys.argv[2]
url = f"https://registry.npmjs.org/mermaid/-/mermaid-{version}.tgz"
with urllib.request.urlopen(url, timeout=120) as response, open(target, "wb") as out:
    out.write(response.read())
PY
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [ "$actual" != "$MERMAID_INTEGRITY" ]; then
        echo "docs_setup.sh: mermaid tarball integrity $actual != $MERMAID_INTEGRITY" >&2
        exit 1
    fi
    tar -xzf "$tarball" -C "$work" package/dist/mermaid.min.js package/LICENSE
    mkdir -p "$vendor"
    cp "$work/package/dist/mermaid.min.js" "$work/package/LICENSE" "$vendor/"
    echo "$MERMAID_VERSION" >"$vendor/VERSION"
fi

have_chromium() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if have_chromium; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "docs_setup.sh: chromium / chromedriver missing and apt-get unusable here (not root?):" \
        "the docs screenshot test will be skipped" >&2
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

"""The documentation site: it builds in strict mode, its generated decision diagram covers
every status and error-code set of ``decisions.py``, and in headless Chromium the diagram
renders as an SVG with its nodes and the benchmark chart loads (screenshots in the tmp dir).
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_rds_export import decisions

pytestmark = pytest.mark.docs

REPO = Path(__file__).resolve().parent.parent
MKDOCS = Path(sys.executable).with_name("mkdocs")
MERMAID = REPO / "docs" / "assets" / "vendor" / "mermaid" / "mermaid.min.js"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@functools.cache
def docs_hooks() -> ModuleType:
    """scripts/docs_hooks.py, the generator the site's build runs."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "scripts" / "docs_hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(site.parent)},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert MERMAID.is_file(), "mermaid.js is not bundled: run bash scripts/docs_setup.sh"
    site = tmp_path_factory.mktemp("docs") / "site"
    result = build(REPO / "mkdocs.yml", site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return site


def test_the_site_builds_strictly_with_its_generated_parts(site: Path) -> None:
    decisions_page = (site / "concepts" / "decisions" / "index.html").read_text()
    assert decisions_page.count('class="mermaid"') == 1
    assert "decide_snapshot" in decisions_page
    chart = (site / "assets" / "generated" / "worker-seconds.svg").read_text()
    for variant, value in docs_hooks().worker_seconds():
        assert f"{value:,} s" in chart and variant in chart
    operators = (site / "reference" / "operators" / "index.html").read_text()
    assert "RdsStartExportTaskOperator" in operators and "waiter_interval" in operators
    assert "Worker occupancy" in (site / "benchmarks" / "index.html").read_text()
    # The how-to guides include the example DAGs as they are (pymdownx.snippets).
    for page, dag in (
        ("nightly-export", "nightly_rds_export"),
        ("fleet", "fleet_rds_export"),
        ("downstream", "nightly_export_consumer"),
        ("event-driven", "event_driven_rds_export"),
    ):
        shown = html.unescape(
            re.sub(r"<[^>]+>", "", (site / "how-to" / page / "index.html").read_text())
        )
        first_line = (REPO / "example_dags" / f"{dag}.py").read_text().splitlines()[0]
        assert first_line in shown and "--8<--" not in shown, page
    assert (site / "assets" / "vendor" / "mermaid" / "mermaid.min.js").is_file()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """Strict mode is on: a page linking to a page that does not exist fails the build."""
    copy = tmp_path / "repo"
    for name in ("docs", "scripts", "bench", "example_dags", "airflow_rds_export"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(REPO / name, copy / name)
    page = copy / "docs" / "how-to" / "fleet.md"
    page.write_text(page.read_text() + "\nSee [the quota page](quota-that-does-not-exist.md).\n")
    result = build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "quota-that-does-not-exist.md" in result.stderr, result.stderr


def test_the_diagram_covers_every_status_and_error_code_set() -> None:
    diagram = docs_hooks().decision_diagram()
    sets = {
        name: value
        for name, value in vars(decisions).items()
        if isinstance(value, frozenset) and name.endswith(("_STATUSES", "_CODES"))
    }
    assert len(sets) >= 15, sorted(sets)
    sets["REMEDIES"] = frozenset(decisions.REMEDIES)
    sets["SNAPSHOT_CREATED_EVENT_IDS"] = frozenset(decisions.SNAPSHOT_CREATED_EVENT_IDS)
    sets["EXPORT_ENDED_EVENT_IDS"] = frozenset(decisions.EXPORT_ENDED_EVENT_IDS)
    missing = {
        name: sorted(m for m in members if m not in diagram) for name, members in sets.items()
    }
    assert not {name: members for name, members in missing.items() if members}
    for action in decisions.ACTIONS:
        assert f":::{action}" in diagram, action


def test_the_diagram_arrows_are_what_decisions_returns() -> None:
    """Spot checks, against the module, of arrows the diagram draws."""
    rows = {
        (component, row.label): actions for component, row, actions in docs_hooks().decision_rows()
    }
    assert rows[("snapshot", "broken")] == {"fail": "fail", "skip": "skip"}
    assert rows[("start", "identifier taken, same export, dead")]["adopt"] == "restart"
    assert rows[("start", "quota of 5 exports")] == {None: "wait"}
    assert rows[("cancel", "finished")] == {"skip": "skip", "fail": "fail"}
    assert rows[("tables", "a table failed, skipped or missing")]["warn"] == "done"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        missing = "chromium / chromedriver not installed (bash scripts/docs_setup.sh as root)"
        # In CI (CI=true) scripts/docs_setup.sh must have installed them: a skip would hide it.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,2400")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    # The Material theme draws each diagram into a closed shadow root; open it for the test.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "const attach = Element.prototype.attachShadow;"
            "Element.prototype.attachShadow = function (init) {"
            " return attach.call(this, {...init, mode: 'open'}); };"
        },
    )
    try:
        yield driver
    finally:
        driver.quit()


#: The rendered diagram: Material puts it in the shadow root of the ``.mermaid`` element.
SVG = "document.querySelector('.mermaid')?.shadowRoot?.querySelector('svg')"


def wait_for(driver: Any, script: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def only_local_resources(driver: Any, origin: str) -> list[str]:
    """Every resource the page loaded from somewhere else (a CDN): none expected."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [url for url in urls if not url.startswith((origin, "data:", "blob:"))]


def test_chromium_renders_the_decision_diagram(
    browser: Any, served: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    browser.get(f"{served}/concepts/decisions/")
    nodes = wait_for(
        browser,
        f"const svg = {SVG};return svg ? svg.querySelectorAll('g.node').length : 0;",
    )
    shot = tmp_path_factory.mktemp("screenshots") / "decisions.png"
    diagram = browser.find_element("css selector", ".mermaid")
    browser.execute_script("arguments[0].scrollIntoView()", diagram)
    browser.save_screenshot(str(shot))
    expected = docs_hooks().decision_diagram().count("([") + sum(
        1 for _, _, _ in docs_hooks().decision_rows()
    )
    assert nodes == expected, f"{nodes} nodes rendered, {expected} drawn (screenshot {shot})"
    text = browser.execute_script(f"return {SVG}.textContent")
    assert "Syntax error" not in text and "decide_snapshot" in text
    size = browser.execute_script(
        f"const r = {SVG}.getBoundingClientRect();return [r.width, r.height];"
    )
    assert size[0] > 300 and size[1] > 300, size
    assert only_local_resources(browser, served) == []
    assert shot.stat().st_size > 10_000


def test_chromium_shows_the_benchmark_chart(
    browser: Any, served: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    browser.get(f"{served}/benchmarks/")
    width = wait_for(
        browser,
        "const img = document.getElementById('worker-seconds-chart');"
        "return img && img.complete ? img.naturalWidth : 0;",
    )
    chart = browser.find_element("id", "worker-seconds-chart")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    shot = tmp_path_factory.mktemp("screenshots") / "benchmarks.png"
    browser.save_screenshot(str(shot))
    assert width == 900, f"chart naturalWidth {width} (screenshot {shot})"
    assert browser.execute_script("return document.title").startswith("Benchmarks")
    assert only_local_resources(browser, served) == []


def test_the_readme_is_a_first_visit_page() -> None:
    """The README keeps exactly the two set-up commands, and its links point at files."""
    readme = (REPO / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("bash scripts/")]
    assert [line.split("#")[0].strip() for line in commands] == [
        "bash scripts/demo.sh",
        "bash scripts/test.sh",
    ]
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not link.startswith("http")]
    assert local and all((REPO / link).exists() for link in local), local
    assert len(readme.splitlines()) < 150


def test_provider_info_points_at_pages_of_the_site() -> None:
    import jsonschema
    from airflow import settings  # noqa: F401  (airflow's package data: the schema)

    from airflow_rds_export.provider_info import DOCS_BASE_URL, get_provider_info

    info = get_provider_info()
    schema = Path(sys.modules["airflow"].__file__ or "").with_name("provider_info.schema.json")
    jsonschema.validate(info, json.loads(schema.read_text()))
    config = (REPO / "mkdocs.yml").read_text()
    assert f"site_url: {DOCS_BASE_URL}\n" in config
    urls = [info["docs-url"]] + [
        url
        for kind in ("integrations", "operators", "sensors", "triggers")
        for entry in info[kind]
        for url in entry.get("how-to-guide", [])
    ]
    assert len(urls) > 4
    for url in urls:
        assert url.startswith(DOCS_BASE_URL), url
        page = url.removeprefix(DOCS_BASE_URL).rstrip("/") or "index"
        assert (REPO / "docs" / f"{page}.md").is_file(), url

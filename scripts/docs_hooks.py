"""MkDocs hooks (``hooks:`` in mkdocs.yml): the generated parts of the documentation site.

* The decision diagram (docs/concepts/decisions.md, ``<!-- generated: decision-diagram -->``)
  is a Mermaid flowchart drawn from :mod:`airflow_rds_export.decisions` itself: each box
  lists the members of one of its status or error-code sets, and each arrow's action is
  what the module's ``decide_*`` function returns for a member of that set under each
  policy value. Change a set or a rule and the diagram follows.
* Sphinx roles in docstrings (``:class:`~x.Y```) are shown as code (``Y``) in the reference.
* The benchmark chart (``assets/generated/worker-seconds.svg``) is drawn from the
  worker-occupancy table of ``bench/RESULTS.md`` (which ``bench/report.py`` writes from the
  measurements): the projected worker-seconds of a 30-minute export, per variant.

Run it as a script to print both (``python scripts/docs_hooks.py diagram|chart``).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DIAGRAM_MARKER = "<!-- generated: decision-diagram -->"
CHART_PATH = "assets/generated/worker-seconds.svg"
RESULTS = REPO / "bench" / "RESULTS.md"
WORKER_SECTION = "## 3. Worker occupancy"
WORKER_COLUMN = "projected worker-s, 30-min export"

# --------------------------------------------------------------------------------------
# The decision diagram


@dataclass(frozen=True)
class Row:
    """One kind of AWS answer a component meets, and how it is decided.

    ``decide(value)`` returns the action for one value of ``policy`` (or, without a
    policy, ``decide(None)`` the one action).
    """

    label: str
    members: Iterable[str]
    decide: Callable[[str | None], str]
    policy: str | None = None
    values: tuple[str, ...] = ()
    default: str | None = None


@dataclass(frozen=True)
class Component:
    key: str
    title: str
    rows: tuple[Row, ...]


def _components() -> tuple[Component, ...]:
    from airflow_rds_export import decisions as d

    def snapshot(status: str | None) -> dict[str, Any] | None:
        return None if status is None else {"Status": status}

    def export(status: str | None) -> dict[str, Any] | None:
        return None if status is None else {"Status": status.upper()}

    def snap(status: str | None, on_missing: str = "reschedule", on_failure: str = "fail") -> str:
        return d.decide_snapshot(
            snapshot(status), resource="s", on_missing=on_missing, on_failure=on_failure
        ).action

    def wait(
        task: dict[str, Any] | None, on_missing: str = "reschedule", on_failure: str = "fail"
    ) -> str:
        return d.decide_export(
            task,
            resource="e",
            target_statuses={d.EXPORT_COMPLETE_STATUS},
            error_statuses=set(d.DEFAULT_EXPORT_ERROR_STATUSES),
            on_missing=on_missing,
            on_failure=on_failure,
        ).action

    def start(code: str, message: str, on_invalid_state: str = "reschedule") -> str:
        decision = d.decide_start_error(
            code, message, resource="e", on_invalid_state=on_invalid_state
        )
        return "raise" if decision is None else decision.action

    def adopt(existing: dict[str, Any], if_exists: str = "adopt") -> str:
        return d.decide_adoption(
            existing,
            resource="e",
            if_exists=if_exists,
            source_arn="arn",
            s3_bucket_name="b",
            s3_prefix="p",
        ).action

    def same(status: str) -> dict[str, Any]:
        return {"Status": status.upper(), "SourceArn": "arn", "S3Bucket": "b", "S3Prefix": "p"}

    def cancel(status: str | None, on_invalid_state: str = "skip", on_missing: str = "fail") -> str:
        return d.decide_cancel(
            export(status), resource="e", on_invalid_state=on_invalid_state, on_missing=on_missing
        ).action

    def tables(on_table_failure: str, clean: bool = False) -> str:
        problem = () if clean else (d.TableProblem("db.public.t", "reason"),)
        verdict = d.TablesVerdict(1, problem, (), (), 1.0, True, ())
        return d.decide_tables(verdict, resource="e", on_table_failure=on_table_failure).action

    def call(code: str | None, http_status: int | None = None, unreachable: bool = False) -> str:
        decision = d.decide_call_error(
            "r",
            error_code=code,
            error_message="m",
            http_status=http_status,
            unreachable=unreachable,
        )
        return "raise" if decision is None else decision.action

    def one(members: Iterable[str], check: Callable[[str], str]) -> Callable[[str | None], str]:
        """The action every member gets (the rule must treat the whole set alike)."""

        def decide(_: str | None) -> str:
            actions = {check(member) for member in members}
            assert len(actions) == 1, f"members of one set decided differently: {actions}"
            return actions.pop()

        return decide

    pending, broken = sorted(d.SNAPSHOT_PENDING_STATUSES), sorted(d.SNAPSHOT_BROKEN_STATUSES)
    running, errors = sorted(d.EXPORT_IN_PROGRESS_STATUSES), sorted(d.EXPORT_ERROR_STATUSES)
    live = sorted(d.EXPORT_STATUSES - d.EXPORT_ERROR_STATUSES - {"canceling"})
    dead = sorted(d.EXPORT_ERROR_STATUSES | {"canceling"})
    cancelable = [s for s in running if cancel(s) == "wait"]
    finished = sorted(d.EXPORT_TERMINAL_STATUSES)
    transient = sorted(d.THROTTLING_CODES)
    permanent = sorted(d.REMEDIES)
    missing = sorted(d.NOT_FOUND_CODES)
    missing_snapshot = sorted(d.SNAPSHOT_NOT_FOUND_CODES)
    missing_export = sorted(d.EXPORT_NOT_FOUND_CODES)
    policies = ("reschedule", "skip", "fail")
    asked = d.SNAPSHOT_CREATED_EVENT_IDS  # RdsEventTrigger's default event_ids

    def event(event_id: str, source: str = "orders") -> str:
        verdict = d.decide_event(
            event_id=event_id,
            source_id=source,
            source_arn=f"arn:aws:rds:eu-west-1:123456789012:snapshot:{source}",
            account="123456789012",
            region="eu-west-1",
            event_ids=asked,
            source_identifiers=["orders*"],
        )
        return "fire" if verdict.relevant else "drop"

    def queue(code: str | None, http_status: int | None = None) -> str:
        verdict = d.decide_queue_error(
            "q", error_code=code, error_message="m", http_status=http_status
        )
        return "retry_error" if verdict.permanent else "retry_warning"

    queue_permanent = [*sorted(d.QUEUE_MISSING_CODES), "AccessDenied", "ExpiredToken"]
    return (
        Component(
            "snapshot",
            "Snapshot sensors (decide_snapshot)",
            (
                Row(
                    d.SNAPSHOT_READY_STATUS, [d.SNAPSHOT_READY_STATUS], lambda _: snap("available")
                ),
                Row("pending", pending, one(pending, snap)),
                Row(
                    "broken",
                    broken,
                    lambda v: one(broken, lambda s: snap(s, on_failure=v or ""))(v),
                    "on_failure",
                    ("fail", "skip"),
                    "fail",
                ),
                Row(
                    "not found",
                    missing_snapshot,
                    lambda v: snap(None, on_missing=v or ""),
                    "on_missing",
                    policies,
                    "reschedule",
                ),
            ),
        ),
        Component(
            "export",
            "Export waits: sensors, start operator, triggers (decide_export)",
            (
                Row(
                    d.EXPORT_COMPLETE_STATUS,
                    [d.EXPORT_COMPLETE_STATUS],
                    lambda _: wait(export("complete")),
                ),
                Row("in progress", running, one(running, lambda s: wait(export(s)))),
                Row(
                    "failed or canceled",
                    errors,
                    lambda v: one(errors, lambda s: wait(export(s), on_failure=v or ""))(v),
                    "on_failure",
                    ("fail", "skip"),
                    "fail",
                ),
                Row(
                    "not found",
                    missing_export,
                    lambda v: wait(None, on_missing=v or ""),
                    "on_missing",
                    policies,
                    "reschedule",
                ),
                Row("unknown status", ["a status AWS adds"], lambda _: wait(export("new"))),
                Row("no Status", ["a description without Status"], lambda _: wait({})),
            ),
        ),
        Component(
            "tables",
            "Table verification of a COMPLETE export (decide_tables)",
            (
                Row(
                    "every table " + d.TABLE_COMPLETE_STATUS,
                    [d.TABLE_COMPLETE_STATUS],
                    lambda _: tables("fail", clean=True),
                ),
                Row(
                    "a table failed, skipped or missing",
                    ["failed", *sorted(d.TABLE_SKIPPED_STATUSES), "missing"],
                    lambda v: tables(v or ""),
                    "on_table_failure",
                    d.TABLE_FAILURE_POLICIES,
                    "fail",
                ),
                Row(
                    "metadata files unreadable (S3 read denied)",
                    sorted(d.S3_ACCESS_DENIED_CODES),
                    lambda _: (
                        "warn_only"
                        if all(d.is_access_denied(c) for c in d.S3_ACCESS_DENIED_CODES)
                        else "raise"
                    ),
                ),
            ),
        ),
        Component(
            "start",
            "Start operator: StartExportTask refused (decide_start_error, decide_adoption)",
            (
                Row(
                    "source not ready",
                    sorted(d.SOURCE_NOT_READY_CODES),
                    lambda v: start("InvalidExportSourceState", "not available", v or ""),
                    "on_invalid_state",
                    policies,
                    "reschedule",
                ),
                Row(
                    "another export of the source runs",
                    ["message: export task X is already running"],
                    lambda v: start(
                        "InvalidExportSourceState", "export task x is already running", v or ""
                    ),
                    "on_invalid_state",
                    policies,
                    "reschedule",
                ),
                Row(
                    "quota of 5 exports",
                    sorted(d.EXPORT_LIMIT_CODES),
                    one(sorted(d.EXPORT_LIMIT_CODES), lambda c: start(c, "limit")),
                ),
                Row(
                    "identifier taken, same export, live or complete",
                    [*sorted(d.ALREADY_EXISTS_CODES), *live],
                    lambda v: one(live, lambda s: adopt(same(s), v or ""))(v),
                    "if_exists",
                    ("adopt", "fail"),
                    "adopt",
                ),
                Row(
                    "identifier taken, same export, dead",
                    dead,
                    lambda v: one(dead, lambda s: adopt(same(s), v or ""))(v),
                    "if_exists",
                    ("adopt", "fail"),
                    "adopt",
                ),
                Row(
                    "identifier taken, another export",
                    ["other source, bucket or prefix"],
                    lambda _: adopt({**same("complete"), "SourceArn": "other"}),
                ),
            ),
        ),
        Component(
            "cancel",
            "Cancel operator (decide_cancel)",
            (
                Row("cancelable", cancelable, one(cancelable, cancel)),
                Row("canceling", ["canceling"], lambda _: cancel("canceling")),
                Row(
                    "finished",
                    finished,
                    lambda v: one(finished, lambda s: cancel(s, on_invalid_state=v or ""))(v),
                    "on_invalid_state",
                    ("skip", "fail"),
                    "skip",
                ),
                Row(
                    "not found",
                    missing_export,
                    lambda v: cancel(None, on_missing=v or ""),
                    "on_missing",
                    ("fail", "skip"),
                    "fail",
                ),
                Row(
                    "cancel raced",
                    sorted(d.INVALID_EXPORT_STATE_CODES),
                    lambda _: (
                        "redecide"
                        if all(d.cancel_raced(c) for c in d.INVALID_EXPORT_STATE_CODES)
                        else "raise"
                    ),
                ),
            ),
        ),
        Component(
            "events",
            "Event trigger: RDS events from SQS (decide_event, decide_queue_error)",
            (
                Row("snapshot created", asked, one(asked, event)),
                Row(
                    "other event IDs (unless in event_ids)",
                    sorted(d.EXPORT_ENDED_EVENT_IDS),
                    one(sorted(d.EXPORT_ENDED_EVENT_IDS), event),
                ),
                Row(
                    "source, account or Region not asked for",
                    ["source_identifiers, accounts, regions"],
                    lambda _: event(asked[0], source="billing"),
                ),
                Row(
                    "receive refused for good",
                    queue_permanent,
                    one(queue_permanent, queue),
                ),
                Row(
                    "receive throttled, 5xx",
                    [*transient, "HTTP 5xx"],
                    lambda _: one([queue(c) for c in transient] + [queue(None, 503)], str)(None),
                ),
            ),
        ),
        Component(
            "calls",
            "Any AWS call that fails (decide_call_error)",
            (
                Row(
                    "throttled, 5xx, unreachable",
                    [*transient, "HTTP 5xx", "no connection"],
                    lambda _: one(
                        [call(c) for c in transient]
                        + [call(None, http_status=503), call(None, unreachable=True)],
                        lambda action: action,
                    )(None),
                ),
                Row(
                    "permission or configuration (REMEDIES)",
                    permanent,
                    one(permanent, call),
                ),
                Row(
                    "not found, on a describe",
                    missing,
                    lambda _: "on_missing" if all(d.is_not_found(c) for c in missing) else "raise",
                ),
                Row("any other error", ["unknown code"], lambda _: call("SomethingNew")),
            ),
        ),
    )


#: What each action looks like in the diagram, and what it means.
ACTION_TEXT = {
    "done": "done",
    "wait": "wait",
    "skip": "skip",
    "fail": "fail",
    "restart": "restart as -r2",
    "raise": "raise (retries apply)",
    "on_missing": "no description: the on_missing row above",
    "redecide": "describe again, decide on the new status",
    "warn_only": "warning naming the permission; judge the WarningMessage alone",
    "fire": "fire: one asset event",
    "drop": "delete the message, fire nothing",
    "retry_error": "log an error with the remedy, keep watching",
    "retry_warning": "log a warning, keep watching",
}
#: Where an action's name means something else for one component.
ACTION_OVERRIDES = {("cancel", "wait"): "call CancelExportTask"}


def decision_rows() -> list[tuple[str, Row, dict[str | None, str]]]:
    """Every (component, row, {policy value: action}) the diagram draws."""
    rows = []
    for component in _components():
        for row in component.rows:
            values: tuple[str | None, ...] = row.values or (None,)
            rows.append((component.key, row, {value: row.decide(value) for value in values}))
    return rows


def _quote(text: str) -> str:
    """Text safe inside a quoted Mermaid label."""
    return escape(text, quote=False).replace('"', "'")


def decision_diagram() -> str:
    """The Mermaid flowchart of every component's decisions."""
    lines = ["flowchart TB"]
    for index, component in enumerate(_components()):
        key = component.key
        lines.append(f'  subgraph {key}["{_quote(component.title)}"]')
        lines.append("    direction LR")
        used: dict[str, str] = {}
        for number, row in enumerate(component.rows):
            members = ", ".join(row.members)
            node = f"{key}{number}"
            lines.append(f'    {node}["<b>{_quote(row.label)}</b><br/>{_quote(members)}"]')
            values: tuple[str | None, ...] = row.values or (None,)
            by_action: dict[str, list[str | None]] = {}
            for value in values:
                by_action.setdefault(row.decide(value), []).append(value)
            for action, chosen in by_action.items():
                target = f"{key}_{action}"
                if target not in used:
                    text = ACTION_OVERRIDES.get((key, action), ACTION_TEXT[action])
                    used[target] = action
                    lines.append(f'    {target}(["{_quote(text)}"]):::{action}')
                if row.policy is None:
                    lines.append(f"    {node} --> {target}")
                else:
                    shown = " / ".join(
                        f"{value}{' (default)' if value == row.default else ''}" for value in chosen
                    )
                    lines.append(f'    {node} -->|"{row.policy}={_quote(shown)}"| {target}')
        lines.append("  end")
        if index:
            lines.append(f"  {_components()[index - 1].key} ~~~ {key}")
    lines += [
        "  classDef done fill:#d7f5dd,stroke:#2e7d32",
        "  classDef wait fill:#e3ecfb,stroke:#1565c0",
        "  classDef skip fill:#f3e5f5,stroke:#6a1b9a",
        "  classDef fail fill:#fde0dc,stroke:#c62828",
        "  classDef restart fill:#fff3cd,stroke:#b7791f",
        "  classDef raise fill:#eeeeee,stroke:#616161",
        "  classDef on_missing fill:#eeeeee,stroke:#616161",
        "  classDef redecide fill:#e3ecfb,stroke:#1565c0",
        "  classDef warn_only fill:#fff3cd,stroke:#b7791f",
        "  classDef fire fill:#d7f5dd,stroke:#2e7d32",
        "  classDef drop fill:#eeeeee,stroke:#616161",
        "  classDef retry_error fill:#fde0dc,stroke:#c62828",
        "  classDef retry_warning fill:#e3ecfb,stroke:#1565c0",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The benchmark chart


def markdown_table(markdown: str, section: str) -> list[dict[str, str]]:
    """The first table under a ``## `` heading of a markdown file, as dicts by column."""
    body = markdown.split(section, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def worker_seconds(results: str | None = None) -> list[tuple[str, float]]:
    """(variant, projected worker-seconds of a 30-minute export), from bench/RESULTS.md."""
    table = markdown_table(results or RESULTS.read_text(), WORKER_SECTION)
    return [(row["variant"], float(row[WORKER_COLUMN])) for row in table]


def worker_seconds_chart(results: str | None = None) -> str:
    """A horizontal bar chart (SVG, log scale) of :func:`worker_seconds`."""
    bars = worker_seconds(results)
    width, label_width, bar_height, gap, top = 900, 430, 26, 12, 56
    plot = width - label_width - 90
    low, high = 0, math.ceil(math.log10(max(value for _, value in bars)))
    height = top + len(bars) * (bar_height + gap) + 40

    def x(value: float) -> float:
        return label_width + plot * (math.log10(max(value, 1.0)) - low) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="22" font-size="15" font-weight="bold">Worker-seconds held by one '
        "30-minute export (projected; log scale; lower is better)</text>",
        f'<text x="10" y="42" fill="#555">From {escape(RESULTS.name)}, section 3 '
        "(bench/report.py); Amazon provider 9.39.0 vs this package</text>",
    ]
    for power in range(low, high + 1):
        gx = x(10**power)
        parts.append(
            f'<line x1="{gx:.1f}" y1="{top - 6}" x2="{gx:.1f}" y2="{height - 30}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{gx:.1f}" y="{height - 14}" text-anchor="middle" fill="#555">'
            f"{10**power:,}</text>"
        )
    for index, (variant, value) in enumerate(bars):
        y = top + index * (bar_height + gap)
        colour = "#c62828" if variant.startswith("official") else "#1565c0"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.68:.1f}" '
            f'text-anchor="end">{escape(variant)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{x(value) - label_width:.1f}" '
            f'height="{bar_height}" fill="{colour}"><title>{escape(variant)}: {value} s'
            "</title></rect>"
        )
        parts.append(
            f'<text x="{x(value) + 6:.1f}" y="{y + bar_height * 0.68:.1f}">{value:,} s</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------
# MkDocs hooks


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, CHART_PATH, content=worker_seconds_chart()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if DIAGRAM_MARKER in markdown:
        markdown = markdown.replace(DIAGRAM_MARKER, f"```mermaid\n{decision_diagram()}```\n", 1)
    return markdown


#: A Sphinx role in a docstring, as mkdocstrings renders it: ``:class:<code>~a.b.C</code>``.
_SPHINX_ROLE = r":(?:class|mod|func|meth|data|attr|exc|obj):<code>(~?)([^<]+)</code>"


def _role_as_code(match: Any) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Our docstrings use Sphinx roles (the house style); show their targets as code."""
    return re.sub(_SPHINX_ROLE, _role_as_code, html)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "diagram"
    print(decision_diagram() if what == "diagram" else worker_seconds_chart(), end="")

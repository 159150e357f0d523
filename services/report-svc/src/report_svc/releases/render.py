"""The release report as HTML (for people) and CSV (for spreadsheets), from its JSON form."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

PARTS = {
    "C": "Changes completed successfully",
    "D": "Production deployments that succeeded and stayed",
    "G": "Green-zone compliance",
    "Q": "Services with passing tests and no critical/high finding",
    "S": "On schedule",
    "E": "Early life support without incidents",
}


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    rel = report["release"]
    w.writerow(["section", "key", "value", "detail"])
    w.writerow(["release", "id", rel["id"], rel["name"]])
    w.writerow(["release", "version", rel["version"], ""])
    w.writerow(["assessment", "score", report["assessment"]["score"], ""])
    for part, value in report["assessment"]["components"].items():
        w.writerow(["assessment", part, value, PARTS.get(part, "")])
    for bucket, ids in report["changes"].items():
        for change_id in ids:
            w.writerow(["change", bucket, change_id, ""])
    for d in report["deployments"]:
        w.writerow(["deployment", d["id"], d["outcome"], f"{d['service']} {d['environment']} {d['at']}"])
    for i in report["incidents"]:
        w.writerow(["incident", i["id"], i["severity"] or "", f"{i['started_at']} -> {i['resolved_at']}"])
    w.writerow(["report", "generated_at", report["generated_at"], ""])
    return out.getvalue()


def _rows(items: list[dict[str, Any]], columns: list[str]) -> str:
    if not items:
        return "<p class='none'>None.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(item.get(c, '')))}</td>" for c in columns) + "</tr>" for item in items
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: dict[str, Any]) -> str:
    rel = report["release"]
    score = report["assessment"]["score"]
    parts = "".join(
        f"<tr><td>{p}</td><td>{escape(PARTS.get(p, ''))}</td><td>{v:.2f}</td>"
        f"<td><svg width='120' height='10' role='img' aria-label='{p} {v:.2f}'><rect width='120' height='10' "
        f"fill='#eee'/><rect width='{120 * float(v):.1f}' height='10' fill='#2f855a'/></svg></td></tr>"
        for p, v in report["assessment"]["components"].items()
    )
    changes = "".join(
        f"<li><b>{escape(bucket.replace('_', ' '))}</b>: {len(ids)} {escape(', '.join(ids))}</li>"
        for bucket, ids in report["changes"].items()
    )
    summary = escape(
        f"Services: {', '.join(rel['services'])}. State: {rel['state']}. Generated {report['generated_at']}."
    )
    deployments = _rows(
        report["deployments"], ["service", "environment", "at", "outcome", "version", "rolled_back", "green_zone"]
    )
    incidents = _rows(report["incidents"], ["id", "service", "severity", "started_at", "resolved_at"])
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Release report: {escape(rel["name"])} {escape(rel["version"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1a202c}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}}.score{{font-size:3rem;font-weight:700}}</style>
</head><body>
<h1>Release report: {escape(rel["name"])} {escape(rel["version"])}</h1>
<p>{summary}</p>
<h2>Assessment</h2><p class="score" id="score">{score}</p><table>{parts}</table>
<h2>Changes</h2><ul>{changes}</ul>
<h2>Production deployments</h2>{deployments}
<h2>Incidents</h2>{incidents}
</body></html>"""

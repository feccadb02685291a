"""The audit as markdown, for the Prefect artifact: a verdict, one row per drift, then the notes."""

from __future__ import annotations

from storage_schemas.audit import AuditReport, describe_checked


def audit_markdown(report: AuditReport) -> str:
    """The audit as markdown: a verdict, then one row per drift, then the notes."""
    checked = describe_checked(report.checked)
    verdict = f"**{len(report.drifts)} drift(s) found**" if report.drifts else "**no drift**"
    lines = [f"# Audit of `{report.target}` ({report.target_kind})", "",
             f"{verdict}; re-hashed {checked} in {report.seconds:.1f}s. Record: `{report.record_path}`", ""]
    if report.drifts:
        lines += ["| what | where | video | recorded | found | detail |", "|---|---|---|---|---|---|"]
        for d in report.drifts:
            cells = [d.what, d.uri, d.video_id or "", (d.recorded or "")[:16], (d.found or "")[:16], d.detail]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"

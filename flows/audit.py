"""lineage_flow and audit_flow: trace an artifact to its sources; re-hash a store or run against its records.

Also the ``vmac lineage PATH [--json]`` and ``vmac audit STORE_OR_RUN [--json]`` subcommands
(``add_lineage_parser`` / ``cmd_lineage``, ``add_audit_parser`` / ``cmd_audit``).
"""

from __future__ import annotations

import argparse
import json

from prefect import flow
from prefect.runtime import flow_run

from tasks.audit import (
    AuditReport,
    audit_artifact,
    lineage_tree,
    publish_audit_report,
    trace_lineage,
)


@flow(name="lineage_flow")
def lineage_flow(path: str) -> dict:
    """The lineage tree of the artifact at ``path`` (see ``tasks.audit.lineage_tree``)."""
    return trace_lineage(path)


@flow(name="audit_flow")
def audit_flow(path: str, progress: bool = True) -> AuditReport:
    """Re-hash the store or run at ``path``, append an ``audit`` lineage record, publish the report.

    Drift does not fail the flow: the report, the record and the artifact say what drifted, and
    ``vmac audit`` exits 1.
    """
    report = audit_artifact(path, progress, flow_run_id=str(flow_run.id) if flow_run.id else None)
    publish_audit_report(report)
    return report


# --- CLI ---------------------------------------------------------------------------------------------


def add_lineage_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``vmac lineage`` to a ``parser.add_subparsers()`` object."""
    p = subparsers.add_parser(
        "lineage",
        help="the chain from an artifact (store, video, run, checkpoint, encoder, benchmark) back to its source hashes",
    )
    p.add_argument("path", metavar="PATH", help="a store, <store>/videos/<id>, run directory, .pt file, "
                                                "evaluation folder or benchmark JSON")
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p.set_defaults(func=cmd_lineage)
    return p


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``vmac audit`` to a ``parser.add_subparsers()`` object."""
    p = subparsers.add_parser(
        "audit", help="re-hash a store's sources and frames, or a run's checkpoints and input frames; report drift",
    )
    p.add_argument("path", metavar="STORE_OR_RUN", help="a store or a pre-training run directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_audit)
    return p


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print the lineage tree (rich, or JSON with --json); 2 when nothing is at PATH.

    Runs the task function directly, not lineage_flow: it only reads, and an interactive query
    should not wait for a Prefect API to start.
    """
    from rich.console import Console

    try:
        tree = lineage_tree(args.path)
    except FileNotFoundError as exc:
        print(f"vmac lineage: {exc}")
        return 2
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        Console().print(render_tree(tree))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Run audit_flow; print the drift table (or JSON); 1 when anything drifted, 2 for a bad path."""
    try:
        report = audit_flow(args.path, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"vmac audit: {exc}")
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_audit_report(report)
    return 1 if report.drifted else 0


# --- rendering ---------------------------------------------------------------------------------------


def node_label(node: dict) -> str:
    """One line for a tree node: kind, URI, short hash, the producing record and any note."""
    from rich.markup import escape

    parts = [f"[bold]{node['kind']}[/bold] {escape(node['uri'])}"]
    if node.get("sha256"):
        parts.append(f"[cyan]sha256 {node['sha256'][:12]}[/cyan]")
    record = node.get("record")
    if record:
        status = record["status"] if record["finished"] else f"{record['status']}, never finished (interrupted?)"
        colour = "green" if record["status"] == "completed" and record["finished"] else "red"
        parts.append(f"[{colour}]{record['kind']} {status}[/{colour}] {record['time']} "
                     f"v{record['code_version']} ({record['id'][:12]})")
        if record.get("error"):
            parts.append(f"[red]{escape(record['error'])}[/red]")
    validation = node.get("validation")
    if validation:
        verdict = "passed" if validation["passed"] else "FAILED"
        stale = "" if validation.get("matches_recorded_catalog") in (None, True) else ", not of the catalog consumed"
        parts.append(f"[magenta]validation {verdict} {validation['validated_at']}{stale}[/magenta]")
    if node.get("note"):
        parts.append(f"[yellow]{escape(node['note'])}[/yellow]")
    return "  ".join(parts)


def render_tree(node: dict, tree=None):
    """A rich Tree of a lineage tree; a folder's other records (failed or interrupted attempts,
    audits) are listed under it."""
    from rich.markup import escape
    from rich.tree import Tree

    branch = Tree(node_label(node)) if tree is None else tree.add(node_label(node))
    shown = (node.get("record") or {}).get("id")
    others = [r for r in node.get("records", []) if r["id"] != shown]
    if others:
        history = branch.add("[dim]other records[/dim]")
        for r in others:
            status = r["status"] if r["finished"] else f"{r['status']}, never finished (interrupted?)"
            error = f" {escape(r['error'])}" if r.get("error") else ""
            history.add(f"[dim]{r['kind']} {status} {r['time']} ({r['id'][:12]}){error}[/dim]")
    for child in node["children"]:
        render_tree(child, branch)
    return branch


def print_audit_report(report: AuditReport, console=None) -> None:
    """A rich table of the drift, then the verdict, the notes and where the record went."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if report.drifts:
        table = Table(title=f"drift in {report.target}")
        for column in ("what", "where", "video", "recorded", "found", "detail", "record"):
            table.add_column(column, overflow="fold")
        for d in report.drifts:
            table.add_row(d.what, d.uri, d.video_id or "", (d.recorded or "-")[:12], (d.found or "-")[:12],
                          d.detail, d.record or "", style="red")
        console.print(table)
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    verdict = f"[red]{len(report.drifts)} DRIFT(S)[/red]" if report.drifts else "[green]NO DRIFT[/green]"
    console.print(f"{verdict}: re-hashed {checked} of {report.target_kind} {report.target} in {report.seconds:.1f}s")
    for note in report.notes:
        console.print(f"[dim]- {note}[/dim]")
    console.print(f"audit record: {report.record_path}")

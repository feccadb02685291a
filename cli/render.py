"""Terminal rendering of flow results with rich: tables, trees and verdict lines.

Results go to stdout; progress bars (``tasks.progress``) go to stderr, so ``--json`` output and
these tables can be piped.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from storage_schemas.audit import AuditReport, describe_checked
from storage_schemas.validation import Severity, ValidationSummary


def print_ingest(result) -> int:
    """A table of every source's outcome and the totals; returns the exit code (1 when any failed
    or was not stored)."""
    console = Console()
    actions = ("decoded", "skipped", "alias", "failed", "retry", "left_out", "ignored")
    counts = {a: sum(o.action == a for o in result.outcomes) for a in actions}
    shown = {"retry": "not stored", "left_out": "left out"}
    styles = {"failed": "red", "left_out": "red", "retry": "yellow", "ignored": "dim"}
    table = Table(title=f"ingest into {result.store}")
    for column in ("video_id", "outcome", "frames", "seconds", "reason"):
        table.add_column(column, overflow="fold")
    for o in sorted(result.outcomes, key=lambda o: (o.action not in ("failed", "retry", "left_out"),
                                                      o.action == "ignored", o.video_id)):
        name = o.uri if o.action in ("left_out", "ignored") else o.video_id
        table.add_row(name, shown.get(o.action, o.action), str(o.frames), f"{o.seconds:.2f}", o.reason or "",
                      style=styles.get(o.action))
    console.print(table)
    extra = [f"{counts['alias']} aliases of stored videos" if counts["alias"] else "",
             f"{counts['retry']} not stored (retried next run)" if counts["retry"] else "",
             f"{counts['left_out']} left out of the folder walk" if counts["left_out"] else "",
             f"{counts['ignored']} ignored (hidden, still images, not media)" if counts["ignored"] else ""]
    console.print(", ".join([f"{counts['decoded']} decoded ({result.frames_decoded} frames)",
                             f"{counts['skipped']} up to date", f"{counts['failed']} failed", *filter(None, extra)]))
    return 1 if counts["failed"] or counts["retry"] or counts["left_out"] else 0


def print_ingest_plan(store: str, plan) -> None:
    """What ``vmac ingest --dry-run`` found: to decode (new), to retry (held, but decoded again, and
    why) and up to date, one table; then the counts."""
    console = Console()
    table = Table(title=f"ingest plan for {store} (dry run: nothing written)")
    for column in ("video_id", "plan", "frames (est.)", "source", "why"):
        table.add_column(column, overflow="fold")
    for item in sorted(plan.todo, key=lambda i: (i.video_id in plan.retry, i.video_id)):
        retried = item.video_id in plan.retry
        why = plan.retry[item.video_id] if retried else (item.error or "not in the store")
        frames = plan.expected_frames.get(item.video_id, 0)  # videos are counted when they are decoded
        table.add_row(item.video_id, "to retry" if retried else "to decode", str(frames) if frames else "",
                      item.uri, why, style="yellow" if retried else None)
    for o in sorted(plan.up_to_date, key=lambda o: o.video_id):
        why = "complete, same source and parameters" if o.action == "skipped" else f"failed for good: {o.reason}"
        table.add_row(o.video_id, "up to date", "", o.uri, why, style="dim")
    for entry in plan.skipped:
        table.add_row("", "left out" if entry.counts else "ignored", "", entry.uri, entry.reason,
                      style="red" if entry.counts else "dim")
    console.print(table)
    retry = len(plan.retry)
    left = sum(entry.counts for entry in plan.skipped)
    console.print(f"{len(plan.todo) - retry} to decode, {retry} to retry, {len(plan.up_to_date)} up to date, "
                  f"{left} left out, {len(plan.skipped) - left} ignored")


def print_validation_summary(summary: ValidationSummary, console=None) -> None:
    """A rich table of the failing rules (critical first) and where the report is."""
    console = console or Console()
    stamp = summary.stamp
    counts = stamp.counts
    failing = summary.critical_failures + summary.quarantines + summary.warnings
    table = Table(title=f"validation of {stamp.store}")
    for column in ("severity", "rule", "videos", "details"):
        table.add_column(column, overflow="fold")
    for rule in failing:
        style = {Severity.critical: "red", Severity.quarantine: "magenta"}.get(rule.severity, "yellow")
        details = "\n".join(rule.details[:20]) + (f"\n… {len(rule.details) - 20} more" if len(rule.details) > 20 else "")
        table.add_row(rule.severity.value, rule.rule, str(len(rule.videos)), details, style=style)
    if failing:
        console.print(table)
    verdict = "[green]PASSED[/green]" if summary.passed else "[red]FAILED[/red]"
    console.print(
        f"{verdict}: {counts.expectations - len(failing)} of {counts.expectations} rules met, "
        f"{counts.critical_failures} critical failure(s), {counts.warnings} warning(s); "
        f"{counts.videos} videos ({counts.complete} complete, {counts.failed} failed, {counts.other} other); "
        f"frames of {counts.videos_read} read, {counts.videos_reused} reused from the last validation"
    )
    if stamp.quarantined:
        console.print(f"quarantined (pre-training skips them): {', '.join(stamp.quarantined)}")
    console.print(f"report: {stamp.report_path}\nGE result: {stamp.result_path}")


def node_label(node: dict) -> str:
    """One line for a tree node: kind, URI, short hash, the producing record and any note."""
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
    console = console or Console()
    if report.drifts:
        table = Table(title=f"drift in {report.target}")
        for column in ("what", "where", "video", "recorded", "found", "detail", "record"):
            table.add_column(column, overflow="fold")
        for d in report.drifts:
            table.add_row(d.what, d.uri, d.video_id or "", (d.recorded or "-")[:12], (d.found or "-")[:12],
                          d.detail, d.record or "", style="red")
        console.print(table)
    checked = describe_checked(report.checked)
    verdict = f"[red]{len(report.drifts)} DRIFT(S)[/red]" if report.drifts else "[green]NO DRIFT[/green]"
    console.print(f"{verdict}: re-hashed {checked} of {report.target_kind} {report.target} in {report.seconds:.1f}s")
    for note in report.notes:
        console.print(f"[dim]- {note}[/dim]")
    console.print(f"audit record: {report.record_path}")


def _ids(ids: list[str], shown: int = 3) -> str:
    return ", ".join(ids[:shown]) + (f" +{len(ids) - shown}" if len(ids) > shown else "")


def print_history(store: str, commits, tags, expired: set[str] = frozenset(), console=None) -> None:
    """``vmac history``: one row per commit, newest first: its snapshot (``expired`` once ``vmac
    gc`` removed it, tags after it), when, which command, and what it did to the catalog."""
    console = console or Console()
    by_snapshot: dict[str, list[str]] = {}
    for tag in tags:
        by_snapshot.setdefault(tag.snapshot, []).append(tag.name)
    table = Table(title=f"history of {store} (newest first)")
    table.add_column("#", justify="right")
    table.add_column("snapshot", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("command")
    table.add_column("videos", overflow="fold")
    for c in commits:
        marks = ["expired"] * (c.snapshot in expired) + by_snapshot.get(c.snapshot, [])
        changes = "; ".join(f"{sign}{len(ids)} {_ids(ids)}" for sign, ids in (("+", c.added), ("~", c.changed),
                                                                                 ("-", c.removed)) if ids)
        table.add_row(str(c.seq), c.snapshot + "".join(f"\n{m}" for m in marks), c.time[:19].replace("T", " "),
                      c.command, escape(changes or c.message), style="dim" if c.snapshot in expired else None)
    console.print(table)
    console.print(f"{len(commits)} commits (+ added, ~ changed, - removed); read a snapshot with STORE@SNAPSHOT or "
                  "STORE@TAG")


def print_gc_report(report, console=None) -> None:
    """``vmac gc``: the snapshots expired and kept, the version folders freed, the bytes."""
    console = console or Console()
    verb = "would expire" if report.dry_run else "expired"
    console.print(f"{report.store}: {verb} {len(report.expired)} snapshot(s) older than {report.cutoff}; kept "
                  f"{len(report.kept)} ({', '.join(f'{k} ({why})' for k, why in sorted(report.kept.items()))})")
    freed = f"{report.freed_bytes / 1e6:.1f} MB"
    console.print(f"{'would free' if report.dry_run else 'freed'} {len(report.removed)} version folder(s), {freed}")
    for folder, why in sorted(report.left.items()):
        console.print(f"left {folder}: {why}", style="dim")

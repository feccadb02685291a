"""What an ingest run leaves behind besides the arrays: its lineage records and its summary."""

from __future__ import annotations

from storage_schemas.config import IngestConfig
from storage_schemas.layout import LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.lineage import Dataset
from tasks.ingest.plan import Outcome
from tasks.io import lineage
from tasks.io.secrets import redact, redact_text
from tasks.io.store import open_snapshot, open_store


def write_started_record(config: IngestConfig, run_id: str, flow_run_id: str | None) -> str:
    """Append a ``started`` record before any decoding, so a killed run leaves a trace that says so.
    A new store is created here, keeping its frames with the codec the run asks for."""
    open_store(config.store, frame_codec=config.decode.frame_codec)
    inputs = [Dataset(uri=source, kind="source") for source in config.sources]
    made = lineage.make_record("ingest", "started", run_id, inputs, [], config.model_dump(mode="json"), flow_run_id)
    return lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", made)


def write_finished_record(config: IngestConfig, outcomes: list[Outcome], run_id: str, flow_run_id: str | None) -> str:
    """Append the run's record to ``<store>/lineage/``: each source's hash in, each video out (its
    version folder and the snapshot that committed it), and the store at the run's last snapshot.

    Status: ``failed`` when the machine kept videos from being stored (``retry``: nothing was
    recorded for them), else ``completed_with_failures`` when an input failed, else ``completed``.
    An alias is an input whose output is the video it shares its bytes with.
    """
    tip = open_snapshot(config.store)
    catalog = tip.records()
    inputs, outputs = [], []
    walked = [o for o in outcomes if o.action in ("left_out", "ignored")]
    for outcome in (o for o in outcomes if o not in walked):
        record = outcome.record or catalog.get(outcome.video_id)
        alias = record is not None and outcome.uri in record.aliases
        inputs.append(Dataset(uri=outcome.uri, kind="source", sha256=record.sha256 if record else None,
                              facets={"video_id": outcome.video_id, **({"alias_of": outcome.video_id} if alias else {})}))
        if record is not None and not alias and outcome.action != "retry":
            entry = tip.entries.get(outcome.video_id)
            version = outcome.version if outcome.record else (entry.version if entry else None)
            outputs.append(Dataset(
                uri=f"{config.store.rstrip('/')}/{VIDEOS_GROUP}/{outcome.video_id}", kind="video",
                sha256=record.frames_sha256,
                facets={"status": record.status.value, "action": outcome.action, "decode_key": record.decode_key,
                        "source_sha256": record.sha256, "reason": record.reason, "version": version,
                        "snapshot": outcome.snapshot},
            ))
    outputs.append(Dataset(uri=config.store.rstrip("/"), kind="store", facets={"snapshot": tip.id}))
    not_stored = [o for o in outcomes if o.action == "retry"]
    error = f"{len(not_stored)} video(s) not stored: {not_stored[0].reason}" if not_stored else None
    status = ("failed" if not_stored else
              "completed_with_failures" if any(o.action in ("failed", "left_out") for o in outcomes) else "completed")
    made = lineage.make_record("ingest", status, run_id, inputs, outputs, config.model_dump(mode="json"), flow_run_id,
                               error=error)
    return lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", made)


ACTIONS = ("decoded", "skipped", "alias", "failed", "retry", "left_out", "ignored")
# What makes a run's outcome a failure: the input's, the machine's, or an entry a walk could not take.
FAILURES = ("failed", "retry", "left_out")


def _failures_first(outcomes: list[Outcome]) -> list[Outcome]:
    # Failed, retried and left out first, then decoded, up to date, aliases and ignored entries.
    return sorted(outcomes, key=lambda o: (o.action not in FAILURES, o.action == "ignored", o.video_id))


def summary_table(outcomes: list[Outcome]) -> list[dict]:
    """Every source's outcome in this run as table rows (a Prefect table artifact), failures first."""
    return [{"video_id": o.video_id, "outcome": o.action, "frames": o.frames, "seconds": round(o.seconds, 2),
             "source": redact(o.uri), "reason": redact_text(o.reason or "")} for o in _failures_first(outcomes)]


def summary_markdown(store: str, outcomes: list[Outcome]) -> str:
    """A markdown table of every source's outcome in this run, failures first."""
    counts = {a: sum(o.action == a for o in outcomes) for a in ACTIONS}
    lines = [
        f"# Ingest into `{redact(store)}`",
        "",
        f"{counts['decoded']} decoded, {counts['skipped']} up to date, {counts['alias']} aliases of stored videos, "
        f"{counts['failed']} failed, {counts['retry']} not stored (retried next run), {counts['left_out']} left out "
        f"of the folder walk, {counts['ignored']} ignored (hidden, still images, not media).",
        "",
        "| video_id | outcome | frames | seconds | source | reason |",
        "|---|---|---:|---:|---|---|",
    ]
    for o in _failures_first(outcomes):
        reason = redact_text(o.reason or "").replace("|", "\\|")
        source = redact(o.uri).replace("|", "\\|")
        lines.append(f"| {o.video_id} | {o.action} | {o.frames} | {o.seconds:.2f} | {source} | {reason} |")
    return "\n".join(lines)

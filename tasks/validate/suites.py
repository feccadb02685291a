"""Great Expectations suites on the validation tables, and each expectation's outcome.

The suites come from ``storage_schemas/suites`` and run in an ephemeral GE context with analytics
and progress bars off; nothing is written to a GE project folder.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from storage_schemas.validation import (
    RuleOutcome,
    SuiteDefinition,
    ValidationThresholds,
    load_suites,
)
from tasks.validate.report import cell_text
from tasks.validate.tables import ValidationTables

# COMPLETE lists every offending row, keyed by video_id, so the report can name them all.
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["video_id"]}


def run_suites(tables: ValidationTables, thresholds: ValidationThresholds,
               suites: list[SuiteDefinition] | None = None) -> dict[str, dict]:
    """Run every suite on its table in an ephemeral GE context; suite name → GE result JSON.

    The thresholds are the suites' parameters (``{"$PARAMETER": name}`` in a suite file).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Imported here: great_expectations takes 2–5 s to import, which every other use of this
    # package (building tables, reading results, the CLI) should not pay.
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    source = context.data_sources.add_pandas("vmac_store")
    values = thresholds.model_dump()
    results = {}
    for suite in suites or load_suites():
        batch = (
            source.add_dataframe_asset(suite.name)
            .add_batch_definition_whole_dataframe("whole_table")
            .get_batch(batch_parameters={"dataframe": tables.table(suite.meta.table)})
        )
        result = batch.validate(
            gx.ExpectationSuite(**suite.ge_suite_dict()),
            result_format=RESULT_FORMAT,
            expectation_parameters={name: values[name] for name in suite.parameters()},
        )
        results[suite.name] = _json_safe(result.to_json_dict())
    return results


def _json_safe(value):
    """NaN and infinities become None, so the result is strict JSON."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def rule_outcomes(results: dict[str, dict], tables: ValidationTables, suites: list[SuiteDefinition]) -> list[RuleOutcome]:
    """Every expectation's outcome with the offending videos, in suite order."""
    outcomes = []
    for suite in suites:
        table = tables.table(suite.meta.table).set_index("video_id", drop=False)
        definitions = {e.meta.rule: e for e in suite.expectations}
        for item in results[suite.name]["results"]:
            definition = definitions[item["expectation_config"]["meta"]["rule"]]
            videos = [entry["video_id"] for entry in (item.get("result") or {}).get("unexpected_index_list") or []]
            outcomes.append(RuleOutcome(
                suite=suite.name,
                rule=definition.meta.rule,
                expectation_type=definition.type,
                severity=definition.severity,
                description=definition.description,
                success=bool(item["success"]),
                videos=videos,
                details=_details(item, videos, table, definition.meta.detail_columns),
            ))
    return outcomes


def _details(item: dict, videos: list[str], table: pd.DataFrame, columns: list[str]) -> list[str]:
    """What the report shows of one GE result: GE's own error, one line per offending video (with
    the expectation's detail columns), or the observed value of a failed table-level expectation."""
    result = item.get("result") or {}
    exception = item.get("exception_info") or {}
    if exception.get("raised_exception"):
        return [f"GE raised: {exception.get('exception_message')}"]
    if videos:
        return [_detail(table, video, columns) for video in videos]
    if not item["success"]:
        return [f"observed {result.get('observed_value')!r}"]
    return []


def _detail(table: pd.DataFrame, video_id: str, columns: list[str]) -> str:
    if video_id not in table.index or not columns:
        return video_id
    row = table.loc[video_id]
    shown = ", ".join(f"{c}={cell_text(row[c])}" for c in columns if c in row.index)
    return f"{video_id} ({shown})"

"""Trial findings B7 and B8: the class of secret shapes × the places a location goes.

Every shape a credential takes in a location (URL userinfo, a query parameter of any naming
style, a fragment, a JSON Web Token, Akamai and Azure tokens, an fsspec chained URL, a connection
string) is put through every place a location leaves the process: the redaction itself, free
text (error lines, log lines through the run loggers' filter), a lineage record, an ingest
summary, and the config every command builds from its options (Prefect's flow parameters). The
oracle: the secret's bytes appear in none of them, and what is not secret stays readable.
"""

from __future__ import annotations

import itertools
import json
import logging

import pytest

from cli.errors import failure_line
from cli.parsers import build_parser
from tasks.io.secrets import MASK, RedactingFilter, reader_uri, redact, redact_json, redact_text

SECRET = "Qx7-s3cr3t-Jk2"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ" + SECRET + "In0.c2lnbmF0dXJl"
QUERY_KEYS = ["accessToken", "secretKey", "apiKey", "AccessKey", "clientSecret", "sessionToken", "X-Amz-Signature",
              "sig", "__token__", "hdnts", "hdnea", "SharedAccessSignature", "AccountKey", "password", "refresh_token"]
SHAPES = [
    *(f"https://host.example/v/clip.mp4?{sep.join(['sv=2020', f'{key}={SECRET}', 'se=1'])}"
      for key, sep in itertools.product(QUERY_KEYS, "&;")),
    f"https://alice:{SECRET}@host.example/clip.mp4",
    f"https://__token__:{SECRET}@pkgs.example/clip.mp4",
    f"https://{SECRET}@host.example/clip.mp4",
    f"https://host.example/clip.mp4#access_token={SECRET}",
    f"https://host.example/clip.mp4?t={JWT}",
    f"https://host.example/clip.mp4?hdnts=exp=1~acl=/*~hmac={SECRET}",
    f"simplecache::s3://AKIAKEY:{SECRET}@bucket/clips/a.mp4",
    f"filecache::https://u:{SECRET}@h/x.mp4::zip://inner.mp4",
    f"blockcache::https://h/x.mp4?X-Amz-Signature={SECRET}",
]
TEXTS = [  # secrets outside any URL: a connection string, a bearer token in a message
    f"DefaultEndpointsProtocol=https;AccountName=lab;AccountKey={SECRET}==;EndpointSuffix=core.windows.net",
    f"request failed with Authorization: Bearer {JWT}",
    f"password={SECRET} apiKey={SECRET}",
]


@pytest.mark.parametrize("url", SHAPES)
def test_every_shape_is_redacted_in_every_place(url, tmp_path):
    from tasks.ingest.plan import Outcome
    from tasks.ingest.report import summary_markdown, summary_table
    from tasks.io import lineage
    from tasks.io.lineage import Dataset

    shown = redact(url)
    assert SECRET not in shown and redact(shown) == shown and SECRET not in reader_uri(shown)
    assert any(part in shown for part in ("host.example", "pkgs.example", "bucket", "h/x.mp4")), "stays readable"
    places = {
        "text": redact_text(f"cannot open {url}: 403 Forbidden"),
        "failure line": failure_line(OSError(13, "Permission denied", url)),
        "json": json.dumps(redact_json({"config": {"sources": [url], "note": f"read {url}"}})),
        "lineage": lineage.make_record("ingest", "completed", lineage.run_id(), [Dataset(uri=url, kind="video")], [],
                                       {"sources": [url]}, error=f"failed {url}").model_dump_json(),
        "summary": summary_markdown(url, [Outcome("v", url, "failed", reason=f"cannot read {url}")])
        + json.dumps(summary_table([Outcome("v", url, "failed", reason=f"cannot read {url}")])),
        "log": _logged(f"decoding %s from {url}", url),
    }
    assert {place: text for place, text in places.items() if SECRET in text} == {}


@pytest.mark.parametrize("text", TEXTS)
def test_secrets_outside_urls_are_masked_in_text(text):
    assert SECRET not in redact_text(text) and MASK in redact_text(text)
    assert SECRET not in _logged(text)


def test_text_without_secrets_is_left_as_it_was():
    for text in ("step=3 loss=0.5 lr=1e-3", "https://h/a.mp4?t=10&x=y", "s3://bucket/key.mp4", "keyframes=12",
                 "/data/clip.mp4", "sort=name;order=asc", "/data/camera_key=3/clip.mp4", "runs/token=5/a.mp4",
                 "file:///data/sig=1/clip.mp4"):
        assert redact_text(text) == text and redact(text) == text


def _logged(message: str, *args) -> str:
    record = logging.LogRecord("prefect.flow_runs", logging.INFO, __file__, 1, message, args, None)
    RedactingFilter().filter(record)
    return record.getMessage()


# --- B8: every location option of every command is kept out of the config (Prefect's parameters) ---

def _configs(url: str, tmp_path) -> dict[str, object]:
    from cli import args as cli_args

    parser = build_parser()
    out = str(tmp_path / "out")
    given = {
        "ingest": (cli_args.ingest_config_from_args, ["ingest", url, "--store", url]),
        "validate": (cli_args.validate_config_from_args, ["validate", "--store", url]),
        "pretrain": (cli_args.pretrain_config_from_args, ["pretrain", "--store", url, "--store", url, "--out", out,
                                                          "--set", f"stores=['{url}']"]),
        "evaluate": (cli_args.evaluate_config_from_args, ["evaluate", "--data", url, "--out", out, "--baseline", "pixels"]),
        "run": (cli_args.pipeline_config_from_args, ["run", "--source", url, "--eval-source", url, "--store", url,
                                                     "--eval-store", url, "--out", out]),
    }
    return {name: build(parser.parse_args(argv)) for name, (build, argv) in given.items()}


@pytest.mark.parametrize("url", [f"s3://AKIA:{SECRET}@bucket/s.zarr", f"https://h/s.zarr?sig={SECRET}",
                                 f"simplecache::s3://k:{SECRET}@b/s.zarr"])
def test_no_location_option_reaches_prefect_with_its_secret(url, tmp_path):
    configs = _configs(url, tmp_path)
    dumped = {name: config.model_dump_json() for name, config in configs.items()}
    assert {name: text for name, text in dumped.items() if SECRET in text} == {}
    assert all(MASK in text for text in dumped.values())


@pytest.mark.parametrize("command", ["pretrain", "evaluate", "run"])
def test_an_output_folder_given_as_a_url_is_refused_in_one_line(command, tmp_path):
    from cli.args import ConfigError, evaluate_config_from_args, pipeline_config_from_args, pretrain_config_from_args

    argv = {"pretrain": ["pretrain", "--store", str(tmp_path / "s.zarr"), "--out", "s3://bucket/run"],
            "evaluate": ["evaluate", "--data", str(tmp_path), "--out", "s3://bucket/eval", "--baseline", "pixels"],
            "run": ["run", "--source", str(tmp_path), "--out", "s3://bucket/all"]}[command]
    build = {"pretrain": pretrain_config_from_args, "evaluate": evaluate_config_from_args,
             "run": pipeline_config_from_args}[command]
    with pytest.raises(ConfigError) as refused:
        build(build_parser().parse_args(argv))
    assert refused.value.lines == [refused.value.lines[0]] and "local folder" in refused.value.lines[0]


@pytest.mark.parametrize("argv", [["sample", "s3://bucket/sample"],
                                  ["import-weights", "/nonexistent.pth", "--encoder", "resnet18", "--out",
                                   f"s3://AKIA:{SECRET}@bucket/encoder.pt"]])
def test_other_outputs_given_as_a_url_are_refused_in_one_line(argv, capsys):
    from cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "local folder" in err[0] and SECRET not in err[0], err

"""`shrike es-setup`, `shrike es-replay` and `shrike kibana-import`: the Elastic Stack side.

Credentials come from the configuration file or SHRIKE_ES_* / SHRIKE_KIBANA_*
environment variables, never from the command line, and are never printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from engine.config import ConfigError, load_config
from engine.sinks import dead_letter_dir
from engine.sinks.config import ElasticsearchConfig
from engine.sinks.deadletter import DeadLetterFile, read_dead_letters
from engine.sinks.errors import SinkError, TemplateConflictError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "es-setup",
        help="install Shrike's ILM policy, index templates and data stream in Elasticsearch",
        description="Install (or update) the ILM policy, component and index templates and "
        "the data stream verdicts are written to. Safe to run again.",
    )
    _connection_options(p)
    p.add_argument(
        "--force", action="store_true", help="replace same-named templates Shrike did not install"
    )
    p.set_defaults(func=run_setup)

    p = sub.add_parser(
        "es-replay",
        help="send dead-lettered verdicts to Elasticsearch again",
        description="Send the verdicts in dead-letter files again, each under its original id "
        "(never twice). What still fails goes to a new dead-letter file.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="dead-letter NDJSON files")
    _connection_options(p)
    p.add_argument("--data-dir", help="where a new dead-letter file goes (default: data dir)")
    p.set_defaults(func=run_replay)

    p = sub.add_parser(
        "kibana-import",
        help="load Shrike's data view, saved search and dashboard into Kibana",
        description="Import Shrike's saved objects through Kibana's saved objects API. "
        "Credentials: SHRIKE_KIBANA_API_KEY or SHRIKE_KIBANA_USERNAME/PASSWORD, "
        "else those of Elasticsearch.",
    )
    p.add_argument("--kibana-url", required=True, help="http://localhost:5601")
    p.add_argument("--space", help="Kibana space id (default: the default space)")
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")
    p.set_defaults(func=run_kibana_import)


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--es-url", help="https://host:9200 (default: config or $SHRIKE_ES_URL)")
    p.add_argument("--namespace", help="data stream namespace (default: config, else default)")
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")


def _es_config(args: argparse.Namespace, command: str) -> ElasticsearchConfig | None:
    try:
        config = load_config(args.config).output.elasticsearch
        changes: dict[str, Any] = {}
        if args.es_url:
            changes.update(url=args.es_url, cloud_id=None)
        if args.namespace:
            changes["namespace"] = args.namespace
        config = dataclasses.replace(config, **changes).with_environment()
    except (ConfigError, ValueError) as exc:
        print(f"shrike {command}: {exc}", file=sys.stderr)
        return None
    if not config.enabled:
        print(
            f"shrike {command}: no Elasticsearch given: use --es-url, SHRIKE_ES_URL or "
            "output.elasticsearch.url",
            file=sys.stderr,
        )
        return None
    return config


def run_setup(args: argparse.Namespace) -> int:
    config = _es_config(args, "es-setup")
    if config is None:
        return 2
    from engine.sinks.elasticsearch import build_client
    from integrations.elastic.setup import es_setup

    try:
        client = build_client(config)
        try:
            report = es_setup(
                client, data_stream=config.data_stream, where=config.where, force=args.force
            )
        finally:
            client.close()
    except TemplateConflictError as exc:
        print(f"shrike es-setup: refused: {exc}", file=sys.stderr)
        return 1
    except SinkError as exc:
        print(f"shrike es-setup: {exc}", file=sys.stderr)
        return 2
    for line in report.lines:
        print(line)
    print(f"ready: verdicts go to {config.data_stream} on {config.where}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    config = _es_config(args, "es-replay")
    if config is None:
        return 2
    from engine.sinks.elasticsearch import replay_dead_letters

    try:
        shrike = load_config(args.config)
    except ConfigError as exc:
        print(f"shrike es-replay: {exc}", file=sys.stderr)
        return 2
    directory = dead_letter_dir(shrike.output, args.data_dir or shrike.data_dir)
    status = 0
    for path in args.files:
        if not os.path.isfile(path):
            print(f"shrike es-replay: {path}: no such file", file=sys.stderr)
            return 2
        again = DeadLetterFile.in_directory(directory, "replay")
        try:
            # read the whole file once first: a bad line stops the replay before anything is sent
            for _letter in read_dead_letters(path):
                pass
            sink = replay_dead_letters(read_dead_letters(path), config, dead_letter=again)
        except SinkError as exc:
            print(f"shrike es-replay: {exc}", file=sys.stderr)
            return 2
        st = sink.stats
        line = (
            f"{path}: {st.received} verdicts, {st.delivered - st.duplicates} indexed, "
            f"{st.duplicates} already there"
        )
        if st.dead_lettered:
            line += f", {st.dead_lettered} failed again -> {again.path}"
            status = 1
        print(line)
    return status


def run_kibana_import(args: argparse.Namespace) -> int:
    from integrations.elastic.kibana import KibanaAuth, import_saved_objects

    try:
        es = load_config(args.config).output.elasticsearch.with_environment()
    except ConfigError as exc:
        print(f"shrike kibana-import: {exc}", file=sys.stderr)
        return 2
    env = os.environ
    if env.get("SHRIKE_KIBANA_API_KEY"):
        auth = KibanaAuth(api_key=env["SHRIKE_KIBANA_API_KEY"])
    elif env.get("SHRIKE_KIBANA_USERNAME"):
        auth = KibanaAuth(
            username=env["SHRIKE_KIBANA_USERNAME"], password=env.get("SHRIKE_KIBANA_PASSWORD", "")
        )
    else:
        auth = KibanaAuth(api_key=es.api_key, username=es.username, password=es.password)
    try:
        result = import_saved_objects(
            args.kibana_url,
            auth=auth,
            space=args.space,
            ca_file=es.ca_file,
            verify_certs=es.verify_certs,
        )
    except SinkError as exc:
        print(f"shrike kibana-import: {exc}", file=sys.stderr)
        return 2
    print(f"imported {result.imported} saved objects: {', '.join(result.titles)}")
    return 0

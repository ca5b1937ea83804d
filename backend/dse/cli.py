"""Command line: serve, evaluate, sweep, catalog, examples, validation-summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dse.catalog import CatalogError, default_catalog
from dse.scenarios.base import InputError


def _print(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _load_document(path: str) -> Any:
    from dse.scenarios.documents import parse_document

    raw = json.loads(Path(path).read_text(encoding="utf-8")) if path != "-" else json.load(sys.stdin)
    return parse_document(raw)


def cmd_serve(args: argparse.Namespace) -> int:
    from dse.api.app import create_served_app
    from dse.api.server import serve, serve_workers
    from dse.settings import get_settings

    settings = get_settings()
    if settings.database_url.startswith("sqlite:///"):
        print(f"scenario store: {settings.database_url.removeprefix('sqlite:///')} (set DSE_DATABASE_URL to change)")
    else:
        print("scenario store: DSE_DATABASE_URL")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # every interface: open loopback's
    print(
        f"dashboard: http://{shown}:{args.port}/"
        + (f" (listening on every interface, {args.host})" if shown != args.host else "")
        + (f" ({args.workers} server processes)" if args.workers > 1 else "")
    )
    if args.workers > 1:
        serve_workers(args.workers, host=args.host, port=args.port)
    else:
        serve(create_served_app(), settings, host=args.host, port=args.port)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dse.services.evaluation import evaluate

    result = evaluate(_load_document(args.file), default_catalog())
    payload = result.model_dump(mode="json")
    if not args.charts:
        payload.pop("charts", None)
    _print(payload)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from dse.scenarios.documents import kind_of
    from dse.scenarios.sweep import SweepAxis, run_sweep

    document = _load_document(args.file)
    axes = []
    for spec in args.axis:
        path, _, values = spec.partition("=")
        axes.append(SweepAxis(path=path, values=[float(v) for v in values.split(",") if v]))
    _print(run_sweep(kind_of(document), document.inputs, default_catalog(), axes).model_dump(mode="json"))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    if args.category:
        _print(catalog.describe(args.category))
    else:
        _print({category: catalog.ids(category) for category in catalog.categories})
    return 0


def cmd_examples(_: argparse.Namespace) -> int:
    from dse.scenarios.registry import KINDS

    _print([doc for kind in KINDS.values() for doc in kind.examples()])
    return 0


def cmd_validation_summary(args: argparse.Namespace) -> int:
    from dse.services.validation import summary_table, validation_summary

    rows = validation_summary(default_catalog())
    if args.json:
        _print([row.model_dump(mode="json") for row in rows])
    else:
        sys.stdout.write(summary_table(rows))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 64")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dse", description="ML-systems design-space explorer")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the API and the dashboard")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="server processes on the one port and store (default 1; SQLite in WAL mode, or PostgreSQL)",
    )
    serve.set_defaults(func=cmd_serve)
    evaluate = sub.add_parser("evaluate", help="evaluate a scenario document (JSON file, or - for stdin)")
    evaluate.add_argument("file")
    evaluate.add_argument("--charts", action="store_true", help="include the Plotly charts")
    evaluate.set_defaults(func=cmd_evaluate)
    sweep = sub.add_parser("sweep", help="sweep one or two inputs of a document")
    sweep.add_argument("file")
    sweep.add_argument("--axis", action="append", required=True, help="PATH=v1,v2,... (give once or twice)")
    sweep.set_defaults(func=cmd_sweep)
    catalog = sub.add_parser("catalog", help="list presets (all categories, or one in full)")
    catalog.add_argument("category", nargs="?")
    catalog.set_defaults(func=cmd_catalog)
    examples = sub.add_parser("examples", help="print the example documents")
    examples.set_defaults(func=cmd_examples)
    summary = sub.add_parser(
        "validation-summary",
        help="mean absolute error per engine and per accelerator/dtype group, over every published figure tested",
    )
    summary.add_argument("--json", action="store_true", help="the rows as JSON instead of a table")
    summary.set_defaults(func=cmd_validation_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (InputError, ValidationError, CatalogError, json.JSONDecodeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

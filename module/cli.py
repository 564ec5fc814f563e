"""Command line: ``mixedbridge run|validate|check|schema|serve|doctor``.

Exit codes: 0 success, 1 a cross-check failed, 2 bad spec or data, 3 internal error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import spec as specmod
from .analysis import prepare, run
from .errors import MixedBridgeError
from .results import Results


def _print_results(results: Results, fmt: str) -> None:
    if fmt == "json":
        print(results.to_json())
    elif fmt == "markdown":
        print(results.to_markdown())
    else:
        print(results.to_text())


def _report_error(exc: MixedBridgeError, fmt: str, source: str) -> None:
    if fmt == "json":
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False))
    else:
        where = f" at {exc.path}" if exc.path else ""
        print(f"error in {source}{where}: {exc.message}", file=sys.stderr)


def _run_jasp_file(path: str) -> int:
    """A JASP request file: its JASP results document as JSON; exit 2 when it is an error."""
    from .jasp.request import run_request

    raw, base = specmod.read_spec(path)
    doc = run_request(raw, base)
    print(json.dumps(doc, ensure_ascii=False, allow_nan=False))
    return 2 if doc.get("status") == "error" else 0


def cmd_run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.spec:
        if _is_jasp_file(path):
            status = max(status, _run_jasp_file(path))
            continue
        try:
            results = run(path)
        except MixedBridgeError as exc:
            _report_error(exc, args.format, path)
            status = max(status, exc.exit_code)
            continue
        _print_results(results, args.format)
        if args.out:
            _write_outputs(results, Path(args.out), Path(path).stem)
    return status


def _is_jasp_file(path: str) -> bool:
    from .jasp.request import is_jasp_request

    try:
        return is_jasp_request(specmod.read_spec(path)[0])
    except MixedBridgeError:
        return False


def _write_outputs(results: Results, out: Path, stem: str) -> None:
    """Results as JSON, and each plot's images, under ``out``."""
    import base64

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(results.to_json(indent=2), encoding="utf-8")
    for plot in results.plots:
        for ext in ("png", "svg"):
            if ext in plot:
                (out / f"{stem}-{plot['name']}.{ext}").write_bytes(base64.b64decode(plot[ext]))


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        raw, base = specmod.read_spec(args.spec)
        normalized = specmod.validate(raw)
        problem = prepare(normalized, base)
    except MixedBridgeError as exc:
        _report_error(exc, args.format, args.spec)
        return exc.exit_code
    if args.format == "json":
        print(json.dumps({"valid": True, "spec": normalized, "nobs": problem.frame.nobs}, ensure_ascii=False))
    else:
        print(f"{args.spec}: valid ({problem.analysis}, {problem.frame.nobs} rows, "
              f"{len(problem.fixed.names)} fixed-effect columns, {len(problem.reterms)} random-effects terms)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        raw, base = specmod.read_spec(args.spec)
        raw["engine"] = "both"
        if base is not None and "path" in raw.get("data", {}):
            raw["data"]["path"] = str(base / raw["data"]["path"])
        results = run(raw)
    except MixedBridgeError as exc:
        _report_error(exc, args.format, args.spec)
        return exc.exit_code
    table = results.table("comparison")
    if args.format == "json":
        print(json.dumps(table.to_dict(), ensure_ascii=False))
    else:
        print(table.to_markdown() if args.format == "markdown" else table.to_text())
    failed = [r for r in table.rows if r["pass"] != "yes"]
    print(f"{len(table.rows) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.name is None:
        print("\n".join(specmod.schema_names()))
        return 0
    try:
        print(json.dumps(specmod.schema(args.name), indent=2, ensure_ascii=False))
    except MixedBridgeError as exc:
        _report_error(exc, "text", "schema")
        return exc.exit_code
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.unsupervised:
        from .serve import serve

        return serve(sys.stdin, sys.stdout)
    from .supervisor import supervise

    return supervise(sys.stdin, sys.stdout, timeout=args.timeout, max_rss_mb=args.max_rss_mb)


def cmd_manifest(args: argparse.Namespace) -> int:
    from .jasp import manifest

    print(json.dumps(manifest(), indent=2, ensure_ascii=False))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .bridge.doctor import doctor

    info = doctor()
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedbridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = dict(choices=["text", "markdown", "json"], default="text", help="output format")
    p = sub.add_parser("run", help="run one or more analysis specs and print their tables")
    p.add_argument("spec", nargs="+")
    p.add_argument("--format", **fmt)
    p.add_argument("--out", help="folder for the results JSON and plot images")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("validate", help="check a spec and its data without fitting")
    p.add_argument("spec")
    p.add_argument("--format", **fmt)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("check", help="fit with both engines and compare every number (exit 1 on disagreement)")
    p.add_argument("spec")
    p.add_argument("--format", **fmt)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("schema", help="print a JSON Schema (spec, results) or list them")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("serve", help="host protocol: one JSON request per line on stdin, one result per line on stdout")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds a request may take unless it sets 'timeout' itself (default 600)")
    p.add_argument("--max-rss-mb", type=float, default=None,
                   help="restart the working process after a request leaves it above this size")
    p.add_argument("--unsupervised", action="store_true",
                   help="answer in this process, without a supervised child (no time limits)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("manifest", help="the module description: analyses, their option schemas and defaults")
    p.set_defaults(func=cmd_manifest)
    p = sub.add_parser("doctor", help="report R, lme4, lmerTest, pbkrtest and rpy2 versions")
    p.add_argument("--format", **fmt)
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

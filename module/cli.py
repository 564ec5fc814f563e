"""Command line: ``mixedbridge run|validate|check|schema|serve|doctor``.

Exit codes: 0 success, 1 a cross-check failed (``check``, or ``run`` of a spec with
``"engine": "both"``), 2 bad spec or data, 3 internal error.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from . import agreement, protocol
from . import spec as specmod
from .analysis import cross_check_warning, prepare, run
from .datapath import data_roots
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


def _report_internal(exc: Exception, source: str) -> None:
    print(f"internal error in {source}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _run_jasp_file(path: str) -> int:
    """A JASP request file: its JASP results document as JSON; exit 2 when it is an error."""
    from .jasp.request import run_request

    raw, base = specmod.read_spec(path)
    doc = run_request(raw, base)
    print(json.dumps(doc, ensure_ascii=False, allow_nan=False))
    return 2 if doc.get("status") == "error" else 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        _report_error(MixedBridgeError("output", f"--out {args.out!r} is a file; give a folder (it is created "
                                       "when missing)"), args.format, "the command line")
        return 2
    if args.dask:
        from .scale.cli import run_on_dask
        try:
            return run_on_dask(args.spec, args.dask, args.data_root, bool(args.out), lambda p, a: _answer(p, a, args))
        except MixedBridgeError as exc:
            _report_error(exc, args.format, "--dask")
            return exc.exit_code
    status = 0
    for path in args.spec:
        status = max(status, _run_one(path, args))
    return status


def _answer(path: str, got: Results | Exception, args: argparse.Namespace) -> int:
    """One spec's answer from ``run --dask``: printed (and written) as ``run`` does; its status."""
    if isinstance(got, MixedBridgeError):
        _report_error(got, args.format, path)
        return got.exit_code
    if isinstance(got, Exception):
        _report_internal(got, path)
        return 3
    _print_results(got, args.format)
    if args.out:
        _write_outputs(got, Path(args.out), Path(path).stem)
    return 1 if _failed_cells(got) else 0


def _run_one(path: str, args: argparse.Namespace) -> int:
    """One spec file of ``run``: its exit status; a failure does not stop the next file."""
    try:
        with data_roots(args.data_root):
            if _is_jasp_file(path):
                return _run_jasp_file(path)
            results = run(path)
            _print_results(results, args.format)
            if args.out:
                _write_outputs(results, Path(args.out), Path(path).stem)
        return 1 if _failed_cells(results) else 0
    except MixedBridgeError as exc:
        _report_error(exc, args.format, path)
        return exc.exit_code
    except BrokenPipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the next file still runs
        _report_internal(exc, path)
        return 3


def _failed_cells(results: Results) -> list[dict]:
    """The cells of the cross-check (``"engine": "both"``) that differ by more than their tolerance."""
    try:
        table = results.table("comparison")
    except KeyError:
        return []
    return agreement.failures(table)


def _is_jasp_file(path: str) -> bool:
    try:
        return protocol.is_jasp(specmod.read_spec(path)[0])
    except MixedBridgeError:
        return False


def _write_outputs(results: Results, out: Path, stem: str) -> None:
    """Results as JSON, and each plot's images, under ``out``."""
    import base64

    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.json").write_text(results.to_json(indent=2), encoding="utf-8")
        for plot in results.plots:
            for ext in ("png", "svg"):
                if ext in plot:
                    (out / f"{stem}-{plot['name']}.{ext}").write_bytes(base64.b64decode(plot[ext]))
    except OSError as exc:
        raise MixedBridgeError("output", f"cannot write the results under --out {str(out)!r}: "
                               f"{exc.strerror or exc}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        raw, base = specmod.read_spec(args.spec)
        normalized = specmod.validate(raw)
        with data_roots(args.data_root):
            problem = prepare(normalized, base)
    except MixedBridgeError as exc:
        _report_error(exc, args.format, args.spec)
        return exc.exit_code
    if args.format == "json":
        print(json.dumps({"valid": True, "spec": normalized, "nobs": problem.frame.nobs}, ensure_ascii=False))
    else:
        columns = len(problem.fixed.names) if problem.fixed else 0
        print(f"{args.spec}: valid ({problem.analysis}, {problem.frame.nobs} rows, "
              f"{columns} fixed-effect columns, {len(problem.reterms)} random-effects terms)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        raw, base = specmod.read_spec(args.spec)
        raw["engine"] = "both"
        data = raw.get("data")
        if base is not None and isinstance(data, dict) and isinstance(data.get("path"), str):
            data["path"] = os.path.join(base, data["path"])
        results = run(raw, data_root=args.data_root or base)
    except MixedBridgeError as exc:
        _report_error(exc, args.format, args.spec)
        return exc.exit_code
    table = results.table("comparison")
    if args.format == "json":
        print(json.dumps(table.to_dict(), ensure_ascii=False))
    else:
        print(table.to_markdown() if args.format == "markdown" else table.to_text())
    failed = agreement.failures(table)
    print(f"{len(table.rows) - len(failed)} passed, {len(failed)} failed", file=sys.stderr)
    if failed:
        print(cross_check_warning(results), file=sys.stderr)
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
    limit = int(args.max_request_mb * 2**20)
    if args.unsupervised:
        from .serve import Session, serve_process

        if args.workers != 1:
            print("mixedbridge serve: --workers needs the supervisor; leave out --unsupervised", file=sys.stderr)
            return 2
        return serve_process(limit, args.data_root, Session(max_request_bytes=limit, warm=True))
    from .supervisor import supervise

    return supervise(sys.stdin.buffer, protocol.answer_stream(), timeout=args.timeout, max_rss_mb=args.max_rss_mb,
                     max_request_bytes=limit, roots=args.data_root, workers=args.workers)


def cmd_manifest(args: argparse.Namespace) -> int:
    from .jasp import manifest

    print(json.dumps({**manifest(), "spec": spec_manifest()}, indent=2, ensure_ascii=False))
    return 0


def spec_manifest() -> dict:
    """The analyses a spec may run (the spec schema's ``analysis``), and a glmm's families with
    their links (the canonical one first) and whether they have a scale."""
    from .families import FAMILIES
    from .options import enum, option

    return {"analyses": list(enum("spec", "/analysis")),
            "description": option("spec", "/analysis")["description"],
            "glmm": {"families": {f.name: {"links": list(f.links), "canonical_link": f.canonical, "scale": f.scale}
                                  for f in FAMILIES.values()},
                     "nAGQ": {"default": option("spec", "/options/nAGQ")["default"],
                              "maximum": option("spec", "/options/nAGQ")["maximum"]}}}


def cmd_doctor(args: argparse.Namespace) -> int:
    from .bridge.doctor import doctor

    info = doctor()
    if args.format == "json":
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0


def _positive(limit: float, what: str):
    """An argparse type: a finite number above 0 and at most ``limit``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value <= limit:
            raise argparse.ArgumentTypeError(f"{what} must be a number above 0 and at most {limit:g}, not {text!r}")
        return value
    return parse


def _count(limit: int, what: str):
    """An argparse type: a whole number from 1 to ``limit``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number from 1 to {limit}, not {text!r}")
        return value
    return parse


def _folder(text: str) -> str:
    """An argparse type: an existing folder."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return text


def _add_data_root(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--data-root", action="append", type=_folder, metavar="DIR",
                   help=f"a folder data files may be read from (repeatable; default: {default})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedbridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fmt: dict = {"choices": ["text", "markdown", "json"], "default": "text", "help": "output format"}
    spec_folder = "the spec file's folder"
    p = sub.add_parser("run", help="run one or more analysis specs and print their tables")
    p.add_argument("spec", nargs="+")
    p.add_argument("--format", **fmt)
    p.add_argument("--out", help="folder for the results JSON and plot images")
    p.add_argument("--dask", metavar="SCHEDULER", help="fit the specs on a Dask cluster: a scheduler address "
                   "(tcp://host:8786), a scheduler file (*.json) or 'local' (docs/scale.md)")
    _add_data_root(p, spec_folder)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("validate", help="check a spec and its data without fitting")
    p.add_argument("spec")
    p.add_argument("--format", **fmt)
    _add_data_root(p, spec_folder)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("check", help="fit with both engines and compare every number (exit 1 on disagreement)")
    p.add_argument("spec")
    p.add_argument("--format", **fmt)
    _add_data_root(p, spec_folder)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("schema", help="print a JSON Schema (spec, results) or list them")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_schema)
    _add_serve(sub)
    p = sub.add_parser("manifest", help="the module description: analyses, their option schemas and defaults")
    p.set_defaults(func=cmd_manifest)
    p = sub.add_parser("doctor", help="report R, lme4, lmerTest, pbkrtest and rpy2 versions")
    p.add_argument("--format", **fmt)
    p.set_defaults(func=cmd_doctor)
    return parser


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="host protocol: one JSON request per line on stdin, one result per line on stdout")
    p.add_argument("--timeout", type=_positive(protocol.MAX_TIMEOUT, "--timeout"), default=protocol.DEFAULT_TIMEOUT,
                   help=f"seconds a request may take unless it sets 'timeout' itself (default "
                        f"{protocol.DEFAULT_TIMEOUT:g}, at most {protocol.MAX_TIMEOUT:g})")
    p.add_argument("--max-rss-mb", type=_positive(math.inf, "--max-rss-mb"), default=None,
                   help="restart the working process after a request leaves it above this size")
    p.add_argument("--max-request-mb", type=_positive(2.0**20, "--max-request-mb"),
                   default=protocol.MAX_REQUEST_BYTES / 2**20,
                   help=f"longest request line, in MiB (default {protocol.MAX_REQUEST_BYTES / 2**20:g})")
    p.add_argument("--workers", type=_count(protocol.MAX_WORKERS, "--workers"), default=1,
                   help="worker processes answering requests at once (default 1: answers in request order; "
                        "more: answers may come out of order, each with its id)")
    p.add_argument("--unsupervised", action="store_true",
                   help="answer in this process, without a supervised child (no time limits, no cancel)")
    _add_data_root(p, "the working directory")
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    return _dispatch(build_parser().parse_args(argv))


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status (never a traceback)."""
    try:
        status = args.func(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, never a traceback
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


#: Commands after which the program may end without the interpreter's teardown (see :func:`entry`).
QUICK_EXIT_COMMANDS = frozenset({"run", "validate", "check", "schema", "manifest"})
#: Top-level packages whose exit handlers must run (R's end, a Dask cluster's shutdown, child
#: processes): with any of them loaded the program ends the ordinary way.
TEARDOWN_PACKAGES = ("rpy2", "dask", "distributed", "multiprocessing")


def entry() -> None:
    """The ``mixedbridge`` program: :func:`main` on the command line, then the end of the process.

    After a one-shot command whose answer is written, the interpreter's teardown (clearing every
    module of numpy, scipy and pandas one by one) costs a cold ``mixedbridge run`` 0.1-0.3 s of
    the wall time its user waits, for nothing: the process ends with the output flushed and the
    logging handlers shut down, as the teardown would leave them. Commands that serve, any run
    that loaded R, Dask or child processes, and a profiled or traced run end the ordinary way."""
    args = build_parser().parse_args()
    status = _dispatch(args)
    if args.command in QUICK_EXIT_COMMANDS and not _needs_teardown():
        _end_now(status)
    sys.exit(status)


def _needs_teardown() -> bool:
    """Whether the process must end the ordinary way: a package of :data:`TEARDOWN_PACKAGES`
    is loaded, or a profiler or tracer (cProfile, coverage) waits to write its report at exit."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    return any(name.split(".", 1)[0] in TEARDOWN_PACKAGES for name in list(sys.modules))


def _end_now(status: int) -> None:
    """End the process with ``status`` at once, after flushing what it wrote."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        status = status or _reader_gone()
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    sys.stderr.flush()
    os._exit(status)


def _reader_gone() -> int:
    """Standard output was closed by its reader (``| head``): stop quietly, as SIGPIPE would."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    entry()

"""`digitrec serve`: the drawing page and the JSON API (FastAPI under uvicorn)."""

from __future__ import annotations

from digitrec.core.hardware import available_cores


def add_parser(verbs) -> None:
    serve = verbs.add_parser("serve", help="the drawing page and the JSON API (FastAPI under uvicorn)")
    serve.add_argument("--model", help="run folder (default: the bundled model)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=available_cores(),
                       help="server processes, each reading one picture at a time (default: one per core)")
    serve.add_argument("--allowed-host", action="append", metavar="NAME",
                       help="also answer requests for this Host name (repeatable); by default only localhost, "
                            "127.0.0.1, [::1] and --host, so no web page elsewhere reaches the server")
    serve.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                       help="also let pages of this origin (http(s)://HOST[:PORT]) post to the API and read its "
                            "answers (repeatable); by default a browser's request from any page but the server's "
                            "own is refused (403), so no other site can store examples or use the server")
    serve.add_argument("--collect", metavar="DIR",
                       help="show 'Wrong? It was: 0-9' under every reading and keep each correction (and, when the "
                            "user ticks it, each confirmed answer) in DIR/<digit>/, a folder `digitrec tune` reads")
    serve.add_argument("--tune-every", type=int, default=0, metavar="N",
                       help="with --collect: re-tune in the background after every N new examples and serve the "
                            "tuned model once it is ready")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from digitrec.serving.app import serve

    serve(args.model, args.host, args.port, args.workers, args.allowed_host, args.collect, args.tune_every,
          args.allow_origin)
    return 0

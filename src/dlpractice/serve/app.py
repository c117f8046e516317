"""The server of one finished run: `POST /predict`, `GET /health`, `GET /model`, `GET /failures`, the
OpenAPI page at /docs, and the Gradio page at /ui, on one FastAPI app.

Every mistake is found before the server starts and is one line: a run that does not exist, has not
finished or whose files are damaged, a lab without a serving spec, a port in use. Requests are checked
before they reach the model: a body over `max_body` bytes is 413; a wrong type, a missing field, a text
longer than the spec allows or a character the model never saw is 422 with a message.
"""

import errno
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from dlpractice.batcher import Batcher
from dlpractice.errors import DlpError
from dlpractice.serve.media import decoded, encoded_length
from dlpractice.serving import FAILURES, Predictor, ServingSpec

MAX_BODY = 64 * 1024  # bytes: far more than any text or prompt the specs allow


@dataclass
class Served:
    """A run ready to serve: what it is, its lab's spec, the loaded model and its failure cases."""

    run_dir: Path
    info: dict[str, Any]
    spec: ServingSpec
    predictor: Predictor
    failures: list[dict[str, Any]] = field(default_factory=list)


def load_served(name: str) -> Served:
    """The run `name` (an id or a unique prefix) with its model loaded, or a one-line error."""
    from dlpractice.runner import find_run

    return served_from(find_run(name))


def served_from(run_dir: Path) -> Served:
    """A run folder's model, loaded, with what /model and the page show about it."""
    from dlpractice.config import config_from_dict
    from dlpractice.registry import lab_record, load_lab
    from dlpractice.runner import read_run

    record = read_run(run_dir)
    if record.state != "finished":
        raise DlpError(f"run {run_dir.name} is {record.state}: only a finished run can be served")
    module = load_lab(record.lab)
    spec = getattr(module, "SERVING", None)
    if not isinstance(spec, ServingSpec):
        raise DlpError(f"lab {record.lab} has no serving spec: its model takes no input a user would send")
    predictor = spec.load(run_dir, config_from_dict(module.Config, record.config))
    lab = lab_record(record.lab)
    info = {
        "lab": lab.id,
        "title": lab.title,
        "run_id": record.run_id,
        "preset": record.spec.preset,
        "metric": lab.metric,
        "value": record.value,
        "metrics": record.metrics,
        "data": {"source": record.data_source, **record.data_info},
        "commit": report_commit(run_dir),
        "input": spec.input,
        "output": spec.output,
    }
    return Served(run_dir, info, spec, predictor, read_failures(run_dir))


def report_commit(run_dir: Path) -> str:
    """The git commit the run was made with, as its report states it."""
    report = run_dir / "report.md"
    found = re.search(r"· commit (\S+)", report.read_text(encoding="utf-8")) if report.is_file() else None
    return found.group(1) if found else "unknown"


def read_failures(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / FAILURES
    if not path.is_file():
        return []
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:
        raise DlpError(f"{path} is unreadable (damaged?): {err}") from None
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise DlpError(f"{path} is not a list of failure cases")
    return cases


def request_model(spec: ServingSpec) -> type:
    """The pydantic schema of POST /predict for the spec's input kind (strict types, no extra fields)."""
    from pydantic import ConfigDict, Field, create_model

    config = ConfigDict(extra="forbid", strict=True)
    example = spec.examples[0] if spec.examples else ""
    if spec.input == "text":
        text = Annotated[str, Field(min_length=1, max_length=spec.max_chars, examples=[example or "text"])]
        return create_model("TextRequest", __config__=config, text=(text, ...))
    if spec.input in ("image", "audio"):
        kind = "PNG or JPEG" if spec.input == "image" else "WAV or FLAC"
        size = {"min_length": 1, "max_length": encoded_length(spec.max_bytes)}
        encoded = Field(**size, description=f"a {kind}, base64")
        name = f"{spec.input.title()}Request"
        return create_model(name, __config__=config, **{spec.input: (Annotated[str, encoded], ...)})
    defaults = {"max_tokens": min(20, spec.max_tokens), "temperature": 1.0, "top_k": 0, **spec.defaults}
    finite = {"allow_inf_nan": False}
    return create_model(
        "PromptRequest",
        __config__=config,
        prompt=(Annotated[str, Field(max_length=spec.max_chars, examples=[example])], ""),
        max_tokens=(Annotated[int, Field(ge=1, le=spec.max_tokens)], defaults["max_tokens"]),
        temperature=(Annotated[float, Field(ge=0.01, le=10, **finite)], defaults["temperature"]),
        top_k=(Annotated[int, Field(ge=0, le=100_000)], defaults["top_k"]),
    )


def answer_model(spec: ServingSpec) -> type:
    """The response schema of each output kind (serving.py says what each holds)."""
    from pydantic import Field, create_model

    if spec.output == "label":
        return create_model("LabelAnswer", label=(str, ...), probabilities=(dict[str, float], ...))
    if spec.output == "entities":
        fields = {"text": (str, ...), "type": (str, ...), "start": (int, ...), "end": (int, ...)}
        Entity = create_model("Entity", **fields, score=(float, ...))
        return create_model("EntitiesAnswer", text=(str, ...), entities=(list[Entity], ...))
    if spec.output == "answer":
        Source = create_model("Source", title=(str, ...), text=(str, ...), score=(float, ...))
        return create_model("AnswerWithSources", text=(str, ...), sources=(list[Source], ...))
    if spec.output == "boxes":
        corners = Annotated[list[float], Field(min_length=4, max_length=4, description="x0, y0, x1, y1")]
        Box = create_model("Box", label=(str, ...), score=(float, ...), box=(corners, ...))
        return create_model("BoxesAnswer", boxes=(list[Box], ...))
    if spec.output == "image":
        png = Annotated[str, Field(description="a PNG data URI")]
        return create_model("ImageAnswer", image=(png, ...), values=(dict[str, float], {}))
    if spec.output == "audio":
        wav = Annotated[str, Field(description="a WAV data URI")]
        return create_model("AudioAnswer", audio=(wav, ...), sample_rate=(int, ...))
    if spec.output == "segments":
        fields = {"speaker": (str, ...), "start": (float, ...), "end": (float, ...)}
        Segment = create_model("Segment", **fields)
        return create_model("SegmentsAnswer", segments=(list[Segment], ...))
    return create_model("TextAnswer", text=(str, ...))


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is 413, whether it says its length or not."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await too_large(send, self.limit)
        body, more = [], True
        while more:  # read it all here (it is small): a chunked body longer than the limit stops early
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, body)) > self.limit:
                return await too_large(send, self.limit)
        replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def receive_again() -> dict:
            return replay.pop() if replay else await receive()

        return await self.app(scope, receive_again, send)


async def too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def body_limit(spec: ServingSpec) -> int:
    """The largest request body: a little over the largest file for image and audio labs, else MAX_BODY."""
    return encoded_length(spec.max_bytes) + 1024 if spec.input in ("image", "audio") else MAX_BODY


def build_app(
    served: Served,
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
    max_body: int | None = None,
    ui: bool = True,
) -> Any:
    """The FastAPI app (with the Gradio page at /ui unless `ui` is False); `app.state.batcher` batches.
    `max_body`: bytes, by default what the spec's input needs (body_limit)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import RedirectResponse

    spec, info = served.spec, served.info
    Request, Answer = request_model(spec), answer_model(spec)
    batcher = Batcher(served.predictor.predict, max_batch, max_wait_ms)
    app = FastAPI(
        title=f"dlp serve · {info['lab']} {info['title']}",
        description=f"Run `{info['run_id']}`: input {spec.input}, output {spec.output}.",
        version=str(info["commit"]),
    )
    app.state.batcher = batcher

    async def answer(item: dict[str, Any]) -> dict[str, Any]:
        try:
            served.predictor.check(item)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        return await batcher.submit(item)

    @app.post("/predict", response_model=Answer, summary=f"{spec.input} in, {spec.output} out")
    async def predict(request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
        try:
            item = decoded(spec, request.model_dump())
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None
        return await answer(item)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        stats = batcher.stats
        batches = {"batches": stats.calls, "requests": stats.items, "mean_batch": stats.mean_batch}
        return {"status": "ok", **batches}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        return info

    @app.get("/failures")
    async def failures(label: str | None = None) -> list[dict[str, Any]]:
        """The run's most confident test mistakes, most confident first; `label`: those of one true class."""
        return [c for c in served.failures if label is None or c.get("label") == label]

    if ui:
        import gradio as gr

        from dlpractice.serve.ui import build_ui

        @app.get("/", include_in_schema=False)
        async def home() -> RedirectResponse:
            return RedirectResponse("/ui")

        app = gr.mount_gradio_app(app, build_ui(served, answer), path="/ui")
    app.add_middleware(BodyLimit, limit=max_body or body_limit(spec))
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying why not (taken before the server starts)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as err:
        raise DlpError(f"cannot serve on host {host!r}: {err.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise DlpError(f"port {port} on {host} is in use: pick another with --port") from None
        raise DlpError(f"cannot serve on {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    return sock


def serve(
    name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Load the run, take the port, then serve until interrupted (uvicorn, one process)."""
    from dlpractice.extras import needs_extra

    for module in ("fastapi", "uvicorn", "gradio"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise needs_extra("dlp serve", "serve", module) from None
    import uvicorn

    sock = bind(host, port)  # a port in use fails first, before the model loads
    try:
        served = load_served(name)
        app = build_app(served, max_batch, max_wait_ms)
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    on_ready(f"serving {served.info['run_id']} on http://{shown}:{port} (/docs: the API, /ui: the page)")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[sock])

"""``ctxbudget proxy``: the HTTP proxy for agents you cannot change (the ``proxy`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ctxbudget.cli import app
from ctxbudget.errors import ConfigError

__all__ = ["proxy"]


@app.command()
def proxy(
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond loopback --keys is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    mode: Annotated[
        str,
        typer.Option(
            help="observe: forward the client's bytes, record every call; manage: send the "
            "request the manager prepares (compacted, cache-aware)."
        ),
    ] = "observe",
    store: Annotated[
        str | None,
        typer.Option(help="Store URL (sqlite:///..., postgresql://..., redis://...)."),
    ] = None,
    anthropic_upstream: Annotated[
        str, typer.Option(help="Where Anthropic Messages calls go.")
    ] = "https://api.anthropic.com",
    openai_upstream: Annotated[
        str, typer.Option(help="Where OpenAI Chat Completions / Responses calls go.")
    ] = "https://api.openai.com",
    context_window: Annotated[
        int | None, typer.Option(help="Window (tokens) managed sessions keep under.")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="Manage mode's preset (digest, agent, digest-lean...).")
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            help="TOML file of proxy keys: name, sha256, team/user/agent (docs/proxy.md)."
        ),
    ] = None,
    manage_oauth: Annotated[
        bool,
        typer.Option(help="Manage subscription (OAuth) traffic too; by default only observed."),
    ] = False,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted.")] = (
        32 * 1024 * 1024
    ),
    max_streams: Annotated[
        int, typer.Option(help="Requests in flight per proxy key (or per proxy without keys).")
    ] = 32,
    max_sessions: Annotated[
        int,
        typer.Option(
            help="Idle client threads each worker keeps in memory per mode (the others are "
            "resumed from the store when they call again).",
            min=1,
        ),
    ] = 256,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Serve the Anthropic and OpenAI APIs locally, recording (and in manage mode, managing)
    every call: point a client's base URL at http://HOST:PORT."""
    try:
        import uvicorn

        from ctxbudget.proxy import ProxyConfig, load_keys
        from ctxbudget.proxy.server import CONFIG_ENV, config_to_json
    except ImportError as exc:
        raise ConfigError(
            f"the proxy needs the proxy extra ({exc.name} is missing): "
            "pip install 'ctxbudget[proxy]'"
        ) from exc
    if mode not in ("observe", "manage"):
        raise ConfigError(f"--mode must be observe or manage, got {mode!r}")
    config = ProxyConfig(
        host=host,
        port=port,
        mode=mode,  # type: ignore[arg-type]
        store=store,
        anthropic_upstream=anthropic_upstream,
        openai_upstream=openai_upstream,
        context_window=context_window,
        policy=policy,
        keys=load_keys(keys) if keys is not None else (),
        manage_oauth=manage_oauth,
        max_body_bytes=max_body_bytes,
        max_streams_per_key=max_streams,
        max_sessions=max_sessions,
    )
    os.environ[CONFIG_ENV] = config_to_json(config)
    typer.echo(
        f"ctxbudget proxy ({config.mode}) on http://{host}:{port}: "
        f"ANTHROPIC_BASE_URL=http://{host}:{port}, OpenAI base_url=http://{host}:{port}/v1",
        err=True,
    )
    uvicorn.run(
        "ctxbudget.proxy.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )

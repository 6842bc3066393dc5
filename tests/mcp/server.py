"""The upstream MCP server of tests/tests/e2e/mcp_sdk.rs: the official Python SDK's
FastMCP (PyPI `mcp` 1.x), unchanged, over streamable HTTP on 127.0.0.1.

Its tools carry names from policies/library/mcp/data.json (allowed, approval-required,
denied) and count every execution; `GET /counts` (straight to this server, not through
the gateway) answers {"tool": runs} and the arguments of each run.

    .venv/bin/python tests/mcp/server.py --port PORT
"""

import argparse
import json
import sys
import threading

from mcp.server.fastmcp import FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse

# The gateway forwards the client's Host, the MCP endpoint's name in the library's data.
ENDPOINT_HOST = "mcp.example.com"

runs: dict[str, list[dict]] = {}
runs_lock = threading.Lock()


def ran(tool: str, arguments: dict) -> None:
    with runs_lock:
        runs.setdefault(tool, []).append(arguments)
    print(json.dumps({"ran": tool, "arguments": arguments}), file=sys.stderr, flush=True)


def build(port: int) -> FastMCP:
    mcp = FastMCP(
        "airlock-e2e-tools",
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[ENDPOINT_HOST, f"{ENDPOINT_HOST}:*", "127.0.0.1:*"],
            allowed_origins=[],
        ),
    )

    @mcp.tool(name="docs.read", description="Read a document (library: allow)")
    def docs_read(path: str) -> str:
        ran("docs.read", {"path": path})
        return f"contents of {path}"

    @mcp.tool(name="k8s.scale", description="Scale a deployment (library: approve, sre)")
    def k8s_scale(deployment: str, replicas: int) -> str:
        ran("k8s.scale", {"deployment": deployment, "replicas": replicas})
        return f"scaled {deployment} to {replicas} replicas"

    @mcp.tool(name="shell.exec", description="Run a shell command (library: deny)")
    def shell_exec(command: str) -> str:
        ran("shell.exec", {"command": command})
        return f"ran {command}"

    @mcp.custom_route("/counts", methods=["GET"])
    async def counts(_request: Request) -> JSONResponse:
        with runs_lock:
            return JSONResponse({"runs": {k: len(v) for k, v in runs.items()}, "arguments": runs})

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    build(args.port).run(transport="streamable-http")


if __name__ == "__main__":
    main()

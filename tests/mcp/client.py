"""An MCP client on the official Python SDK (PyPI `mcp` 1.x: `streamablehttp_client` +
`ClientSession`), unchanged, driven by tests/tests/e2e/mcp_sdk.rs through the gateway.

One session for the life of the process. It initializes, prints one JSON line, then
reads one JSON command a line from stdin and prints one JSON line for each:

    {"op": "list_tools"}                            -> {"ok": true, "tools": [...]}
    {"op": "call", "name": N, "arguments": {...}}   -> {"ok": true, "result": {"isError", "text", "meta"}}
    {"op": "ping"}                                  -> {"ok": true}
    {"op": "complete"}                              -> a completion/complete request
    {"op": "close"}                                 -> ends the session (the SDK sends DELETE)

A failure is {"ok": false, "error": {"kind", "message", "code"}}. Every line carries the
transport's session id, so the driver can check the session never changed. Every step
is bounded (STEP_TIMEOUT); end of input closes the session.

    .venv/bin/python tests/mcp/client.py --url http://127.0.0.1:PORT/mcp \
        --host mcp.example.com --agent spiffe://e2e/agent/mcp-python
"""

import argparse
import asyncio
import json
import sys

import anyio
from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError

STEP_TIMEOUT = 60


def emit(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


def failure(e: BaseException) -> dict:
    code = e.error.code if isinstance(e, McpError) else None
    return {"ok": False, "error": {"kind": type(e).__name__, "message": str(e), "code": code}}


def tool_result(r: types.CallToolResult) -> dict:
    text = "\n".join(c.text for c in r.content if isinstance(c, types.TextContent))
    return {"isError": bool(r.isError), "text": text, "meta": r.meta, "structured": r.structuredContent}


async def step(session: ClientSession, cmd: dict) -> dict:
    op = cmd.get("op")
    if op == "list_tools":
        listed = await session.list_tools()
        return {"ok": True, "tools": sorted(t.name for t in listed.tools)}
    if op == "call":
        r = await session.call_tool(cmd["name"], cmd.get("arguments") or {})
        return {"ok": True, "result": tool_result(r)}
    if op == "ping":
        await session.send_ping()
        return {"ok": True}
    if op == "complete":
        await session.complete(
            types.PromptReference(type="ref/prompt", name="any"),
            {"name": "arg", "value": "x"},
        )
        return {"ok": True}
    return {"ok": False, "error": {"kind": "usage", "message": f"unknown op {op!r}", "code": None}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--agent", required=True)
    args = parser.parse_args()
    headers = {"Host": args.host, "x-airlock-agent": args.agent}
    loop = asyncio.get_running_loop()

    async with streamablehttp_client(args.url, headers=headers) as (read, write, session_id):
        async with ClientSession(read, write) as session:
            with anyio.fail_after(STEP_TIMEOUT):
                init = await session.initialize()
            emit({
                "ok": True, "event": "initialized", "session_id": session_id(),
                "protocol": init.protocolVersion, "server": init.serverInfo.name,
            })
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    break
                cmd = json.loads(line)
                if cmd.get("op") == "close":
                    break
                try:
                    with anyio.fail_after(STEP_TIMEOUT):
                        out = await step(session, cmd)
                except Exception as e:  # reported to the driver, the session goes on
                    out = failure(e)
                out["session_id"] = session_id()
                emit(out)
    emit({"ok": True, "event": "closed"})


if __name__ == "__main__":
    asyncio.run(main())

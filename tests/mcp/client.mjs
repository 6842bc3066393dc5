// An MCP client on the official TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned in
// package.json, installed by scripts/setup-mcp.sh), unchanged: `Client` over
// `StreamableHTTPClientTransport`, driven by tests/tests/e2e/mcp_sdk.rs through the gateway.
//
// The same line protocol as client.py: one session for the life of the process; it
// connects (initialize), prints one JSON line, then reads one JSON command a line from
// stdin and prints one JSON line for each (list_tools, call, ping, complete, close).
// `close` ends the session the SDK's way (`terminateSession`: DELETE) and exits. Every
// step is bounded (STEP_TIMEOUT_MS); end of input closes too.
//
//   node tests/mcp/client.mjs --url http://127.0.0.1:PORT/mcp \
//       --host mcp.example.com --agent spiffe://e2e/agent/mcp-typescript

import http from "node:http";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const STEP_TIMEOUT_MS = 60_000;

const { values: args } = parseArgs({
  options: { url: { type: "string" }, host: { type: "string" }, agent: { type: "string" } },
});
for (const k of ["url", "host", "agent"]) {
  if (!args[k]) {
    console.error(`usage: client.mjs --url URL --host HOST --agent AGENT (missing --${k})`);
    process.exit(2);
  }
}

const emit = (doc) => process.stdout.write(JSON.stringify(doc) + "\n");

const failure = (e) => ({
  ok: false,
  error: { kind: e?.constructor?.name ?? "Error", message: String(e?.message ?? e), code: e instanceof McpError ? e.code : null },
});

const toolResult = (r) => ({
  isError: Boolean(r.isError),
  text: (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n"),
  meta: r._meta ?? null,
  structured: r.structuredContent ?? null,
});

const opts = { timeout: STEP_TIMEOUT_MS };

async function step(client, cmd) {
  switch (cmd.op) {
    case "list_tools": {
      const listed = await client.listTools(undefined, opts);
      return { ok: true, tools: listed.tools.map((t) => t.name).sort() };
    }
    case "call": {
      const r = await client.callTool({ name: cmd.name, arguments: cmd.arguments ?? {} }, undefined, opts);
      return { ok: true, result: toolResult(r) };
    }
    case "ping":
      await client.ping(opts);
      return { ok: true };
    case "complete":
      await client.complete({ ref: { type: "ref/prompt", name: "any" }, argument: { name: "arg", value: "x" } }, opts);
      return { ok: true };
    default:
      return { ok: false, error: { kind: "usage", message: `unknown op ${cmd.op}`, code: null } };
  }
}

// Node's built-in fetch never sends a caller's `Host` (a forbidden header), so the SDK is
// given a fetch (its documented `fetch` option) that connects to the gateway's address and
// names the MCP endpoint's host, as an agent whose DNS points that name at the gateway
// would. Everything above the HTTP exchange is the SDK's own.
const fetchNaming = (host) => (input, init = {}) =>
  new Promise((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    headers.host = host;
    const method = init.method ?? "GET";
    const req = http.request(url, { method, headers, signal: init.signal ?? undefined }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) h.append(k, one);
      }
      const empty = res.statusCode === 204 || res.statusCode === 304 || method === "HEAD";
      if (empty) res.resume();
      resolve(new Response(empty ? null : Readable.toWeb(res), { status: res.statusCode, statusText: res.statusMessage, headers: h }));
    });
    req.on("error", reject);
    req.end(init.body == null ? undefined : typeof init.body === "string" ? init.body : Buffer.from(init.body));
  });

const transport = new StreamableHTTPClientTransport(new URL(args.url), {
  requestInit: { headers: { "x-airlock-agent": args.agent } },
  fetch: fetchNaming(args.host),
});
const client = new Client({ name: "airlock-e2e-typescript", version: "1.0.0" });
await client.connect(transport, opts);
emit({
  ok: true,
  event: "initialized",
  session_id: transport.sessionId ?? null,
  protocol: transport.protocolVersion ?? null,
  server: client.getServerVersion()?.name ?? null,
});

const lines = createInterface({ input: process.stdin, terminal: false });
for await (const line of lines) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  if (cmd.op === "close") break;
  let out;
  try {
    out = await step(client, cmd);
  } catch (e) {
    out = failure(e); // reported to the driver; the session goes on
  }
  out.session_id = transport.sessionId ?? null;
  emit(out);
}
try {
  await transport.terminateSession();
  emit({ ok: true, event: "closed" });
} catch (e) {
  emit({ ...failure(e), event: "closed" });
}
await client.close();
process.exit(0);

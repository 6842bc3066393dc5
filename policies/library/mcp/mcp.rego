# mcp — MCP servers behind the gateway: tool calls by name and arguments, the protocol
# and its streamable HTTP transport, on configured MCP endpoints only.
#
# Gates:  requests to an MCP endpoint (data.mcp.endpoints: a host and a path; the path
#         itself or anything below it). Elsewhere this module decides nothing, whatever
#         the body says: a JSON-RPC body does not make a request an MCP call.
#         On an endpoint:
#         - POST tools/call: decided by the tool's entry in data; an argument value can
#           escalate it (allow → approve → deny, never the other way). Unknown tools are
#           denied.
#         - POST of a protocol method listed in data.mcp.methods, or of any
#           notifications/* (client → server notices: initialized, cancelled, progress,
#           roots/list_changed): allowed.
#         - GET (the server-to-client SSE stream) and DELETE (ending the session): allowed.
#           The Mcp-Session-Id header is not read and is not part of any approval.
#         - anything else (other methods, other HTTP verbs): left to default-deny.
# Input:  input.request.method, .host, .path; input.request.jsonrpc.method, .tool,
#         .arguments (only set for JSON-RPC 2.0 bodies)
# Data:   data.mcp.endpoints = [{"host": "mcp.example.com", "path": "/mcp"}]
#         data.mcp.methods["tools/list"] = true
#         data.mcp.tools["<tool>"] = {"effect": "allow|approve|deny", "risk": "<risk>",
#             "approvers": {...} (optional, else data.mcp.approvers),
#             "arguments": {"<argument>": {"<value>": "approve|deny"}} (optional),
#             "redact": ["request.body.params.arguments.<secret>"] (optional)}
#         data.mcp.approvers
# Examples:
#   tools/call docs.read                                → allow   mcp-tool-allowed (low)
#   tools/call db.query {"table": "orders"}             → allow   mcp-tool-allowed
#   tools/call db.query {"table": "payments"}           → approve mcp-tool-approval (escalated by argument)
#   tools/call k8s.scale                                → approve mcp-tool-approval (high), sre
#   tools/call iam.grant_role {"role": "roles/owner"}   → deny    mcp-tool-denied
#   tools/call shell.exec                               → deny    mcp-tool-denied (critical)
#   tools/call something.new                            → deny    mcp-unknown-tool
#   tools/list                                          → allow   mcp-protocol
#   GET mcp.example.com/mcp (SSE stream), DELETE (session) → allow   mcp-transport
#   POST api.example.com/v1/things {"method": "ping"}   → (no decision: default-deny)
package airlock.rules.mcp

import rego.v1

# The request goes to a configured MCP endpoint: its host, and its path or below.
endpoint if {
	some e in data.mcp.endpoints
	input.request.host == e.host
	under(input.request.path, e.path)
}

under(path, prefix) if path == prefix

under(path, prefix) if startswith(path, concat("", [trim_suffix(prefix, "/"), "/"]))

# A JSON-RPC message posted to an MCP endpoint.
posted if {
	endpoint
	input.request.method == "POST"
	input.request.jsonrpc.method
}

call if {
	posted
	input.request.jsonrpc.method == "tools/call"
}

protocol if {
	posted
	data.mcp.methods[input.request.jsonrpc.method]
}

protocol if {
	posted
	startswith(input.request.jsonrpc.method, "notifications/")
}

transport if {
	endpoint
	input.request.method in {"GET", "DELETE"}
	input.request.body_size == 0
}

tool := data.mcp.tools[input.request.jsonrpc.tool]

# Effects asked for by argument values: one lookup per configured argument.
arg_effects contains e if {
	some name, values in tool.arguments
	e := values[input.request.jsonrpc.arguments[name]]
}

effect := "deny" if tool.effect == "deny"
else := "deny" if "deny" in arg_effects
else := "approve" if tool.effect == "approve"
else := "approve" if "approve" in arg_effects
else := "allow" if tool.effect == "allow"

approvers := object.get(tool, "approvers", data.mcp.approvers)

redact := object.get(tool, "redact", [])

decision := {
	"effect": "deny", "rule": "mcp-unknown-tool", "risk": "high",
	"reason": sprintf("MCP tool %v is not on the tool list", [input.request.jsonrpc.tool]),
} if {
	call
	not tool
} else := {
	"effect": "deny", "rule": "mcp-tool-denied", "risk": tool.risk,
	"reason": sprintf("MCP tool %v may not be called with these arguments", [input.request.jsonrpc.tool]),
} if {
	call
	effect == "deny"
} else := {
	"effect": "approve", "rule": "mcp-tool-approval", "risk": tool.risk,
	"reason": sprintf("MCP tool %v needs a human's approval", [input.request.jsonrpc.tool]),
	"approvers": approvers,
	"expires_in": "15m", "reuse": "once", "redact": redact,
} if {
	call
	effect == "approve"
} else := {
	"effect": "allow", "rule": "mcp-tool-allowed", "risk": tool.risk,
	"reason": "MCP tool is on the safe list",
} if {
	call
	effect == "allow"
} else := {
	"effect": "allow", "rule": "mcp-protocol", "risk": "low",
	"reason": "MCP protocol method",
} if {
	protocol
} else := {
	"effect": "allow", "rule": "mcp-transport", "risk": "low",
	"reason": "MCP streamable HTTP transport (event stream or session end)",
} if {
	transport
}

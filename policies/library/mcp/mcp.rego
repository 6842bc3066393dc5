# mcp — MCP `tools/call` gating by tool name and arguments.
#
# Gates:  JSON-RPC requests (the filter exposes them as input.request.jsonrpc). A tool
#         call is decided by the tool's entry in data; an argument value can escalate it
#         (allow → approve → deny, never the other way). Unknown tools are denied.
#         Protocol methods (initialize, tools/list, …) listed in data are allowed.
# Input:  input.request.jsonrpc.method, .tool, .arguments (only set for JSON-RPC 2.0 bodies)
# Data:   data.mcp.methods["tools/list"] = true
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
package airlock.rules.mcp

import rego.v1

call if input.request.jsonrpc.method == "tools/call"

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
	data.mcp.methods[input.request.jsonrpc.method]
}

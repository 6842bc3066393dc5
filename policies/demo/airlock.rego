# Demo policy: what an agent may do on its own, what needs a human, what never happens.
#
# Written for the filter's hot path: set and object lookups in `data`, no glob or
# regex per request. Rules are ordered by precedence through `else`.
package airlock

import rego.v1

default decision := {"effect": "deny", "rule": "default-deny", "reason": "no rule allows this call"}

host_known if data.hosts[input.request.host]

# Never: deleting anything, or calling hosts the platform team has not listed.
decision := {"effect": "deny", "rule": "unknown-host", "risk": "high",
             "reason": sprintf("host %s is not on the agent allow-list", [input.request.host])} if {
	not host_known
} else := {"effect": "deny", "rule": "no-deletes", "risk": "high",
           "reason": "agents may not delete resources"} if {
	input.request.method == "DELETE"
} else := {"effect": "approve", "rule": "data-export", "risk": "high",
           "reason": "bulk data export leaves the company boundary",
           "approvers": {"groups": ["data-owners"], "quorum": 1},
           "expires_in": "15m", "credential": "export-api", "reuse": "once",
           "redact": ["request.body.destination.credentials"]} if {
	input.request.method == "POST"
	data.exports.paths[input.request.path]
} else := {"effect": "approve", "rule": "mcp-dangerous-tool", "risk": "critical",
           "reason": sprintf("MCP tool %s changes production", [input.request.jsonrpc.tool]),
           "approvers": {"groups": ["sre"], "quorum": 1}, "expires_in": "10m", "reuse": "once"} if {
	input.request.jsonrpc.method == "tools/call"
	data.mcp.dangerous_tools[input.request.jsonrpc.tool]
} else := {"effect": "allow", "rule": "read-only", "risk": "low", "reason": "read-only call"} if {
	data.read_methods[input.request.method]
} else := {"effect": "allow", "rule": "mcp-safe-tool", "risk": "low", "reason": "tool is on the safe list"} if {
	input.request.jsonrpc.method == "tools/call"
	data.mcp.safe_tools[input.request.jsonrpc.tool]
}

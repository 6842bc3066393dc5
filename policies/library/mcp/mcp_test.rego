package airlock.rules.mcp

import rego.v1

tool_call(tool, args) := {"request": {"method": "POST", "host": "mcp.example.com", "path": "/mcp",
	"jsonrpc": {"method": "tools/call", "tool": tool, "arguments": args}}}

test_safe_tool_is_allowed if {
	d := decision with input as tool_call("docs.read", {"id": "runbook"})
	d.effect == "allow"
	d.rule == "mcp-tool-allowed"
}

test_argument_escalates_to_approval if {
	d := decision with input as tool_call("db.query", {"table": "payments"})
	d.effect == "approve"
	d.rule == "mcp-tool-approval"
	d.approvers == {"groups": ["data-owners"], "quorum": 1}
}

test_ordinary_argument_stays_allowed if {
	d := decision with input as tool_call("db.query", {"table": "orders"})
	d.effect == "allow"
}

test_dangerous_tool_needs_sre if {
	d := decision with input as tool_call("k8s.scale", {"deployment": "web", "replicas": 0})
	d.effect == "approve"
	d.risk == "high"
	d.approvers.groups == ["sre"]
	d.reuse == "once"
}

test_argument_escalates_to_deny if {
	d := decision with input as tool_call("iam.grant_role", {"role": "roles/owner", "member": "user:x"})
	d.effect == "deny"
	d.rule == "mcp-tool-denied"
}

test_denied_tool if {
	d := decision with input as tool_call("shell.exec", {"cmd": "ls"})
	d.rule == "mcp-tool-denied"
	d.risk == "critical"
}

test_unknown_tool_is_denied if {
	d := decision with input as tool_call("something.new", {})
	d.effect == "deny"
	d.rule == "mcp-unknown-tool"
}

test_redaction_of_tool_secrets if {
	d := decision with input as tool_call("http.request", {"url": "https://x", "token": "s3cr3t"})
	d.redact == ["request.body.params.arguments.token"]
}

test_protocol_method_is_allowed if {
	d := decision with input as {"request": {"method": "POST", "host": "mcp.example.com", "path": "/mcp", "jsonrpc": {"method": "tools/list"}}}
	d.rule == "mcp-protocol"
}

test_unlisted_method_is_left_to_default_deny if {
	not decision with input as {"request": {"method": "POST", "host": "mcp.example.com", "path": "/mcp", "jsonrpc": {"method": "sampling/createMessage"}}}
}

test_non_json_rpc_is_not_gated_here if {
	not decision with input as {"request": {"method": "POST", "host": "mcp.example.com", "path": "/mcp"}}
}

rpc(http_method, host, path, method) := {"request": {"method": http_method, "host": host, "path": path,
	"body_size": 40, "jsonrpc": {"method": method}}}

test_notifications_are_allowed_on_the_endpoint if {
	d := decision with input as rpc("POST", "mcp.example.com", "/mcp", "notifications/cancelled")
	d.rule == "mcp-protocol"
}

test_event_stream_and_session_end_pass_on_the_endpoint if {
	stream := decision with input as {"request": {"method": "GET", "host": "mcp.example.com", "path": "/mcp", "body_size": 0}}
	stream.rule == "mcp-transport"
	end := decision with input as {"request": {"method": "DELETE", "host": "mcp.example.com", "path": "/mcp", "body_size": 0}}
	end.rule == "mcp-transport"
}

test_a_get_with_a_body_is_not_transport if {
	not decision with input as rpc("GET", "mcp.example.com", "/mcp", "tools/list")
}

test_json_rpc_off_the_endpoint_decides_nothing if {
	not decision with input as rpc("POST", "api.example.com", "/v1/things", "ping")
	not decision with input as rpc("POST", "mcp.example.com", "/mcpx", "initialize")
	not decision with input as rpc("PUT", "mcp.example.com", "/mcp", "ping")
	not decision with input as {"request": {"method": "POST", "host": "api.example.com", "path": "/v1/things",
		"jsonrpc": {"method": "tools/call", "tool": "docs.read", "arguments": {}}}}
}

test_paths_below_the_endpoint_are_the_endpoint if {
	d := decision with input as rpc("POST", "mcp.example.com", "/mcp/", "tools/list")
	d.rule == "mcp-protocol"
}

# The filter evaluates each call of a JSON-RPC batch on its own, with the batch beside
# it in input.request.jsonrpc_batch: the module decides each call as it would alone.
in_batch(call, index, calls) := object.union(call, {"request": {"jsonrpc_batch": {"index": index, "calls": calls}}})

test_calls_of_a_batch_are_decided_as_alone if {
	read := tool_call("docs.read", {"id": "runbook"})
	shell := tool_call("shell.exec", {"cmd": "ls"})
	calls := [read.request.jsonrpc, shell.request.jsonrpc]
	a := decision with input as in_batch(read, 0, calls)
	b := decision with input as in_batch(shell, 1, calls)
	a.rule == "mcp-tool-allowed"
	b.rule == "mcp-tool-denied"
}

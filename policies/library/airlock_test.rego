package airlock

import rego.v1

test_no_rule_applies_denies if {
	d := decision with input as {"request": {"method": "POST", "host": "api.example.com", "path": "/v1/things", "query": {}, "headers": {}}}
	d.effect == "deny"
	d.rule == "default-deny"
}

test_deny_beats_allow if {
	# a listed host allows GET, but the tool call to an unknown MCP tool is denied
	d := decision with input as {"request": {"method": "GET", "host": "vault.corp.example", "path": "/v1/sys/policies", "query": {}, "headers": {}}}
	d.effect == "deny"
	d.rule == "vault-sys-access"
}

test_approve_beats_allow if {
	d := decision with input as {"request": {"method": "GET", "host": "vault.corp.example", "path": "/v1/secret/data/prod/db", "query": {}, "headers": {}}, "agent": {"id": "spiffe://corp/agent/ops-bot"}}
	d.effect == "approve"
	d.rule == "secret-read"
}

test_plain_read_on_listed_host_allows if {
	d := decision with input as {"request": {"method": "GET", "host": "api.example.com", "path": "/v1/reports", "query": {}, "headers": {}}}
	d.effect == "allow"
	d.rule == "known-host-read"
}

test_unknown_host_denies_even_for_an_allowed_tool if {
	d := decision with input as {"request": {"method": "POST", "host": "mcp.evil.example", "path": "/mcp", "query": {}, "headers": {},
		"jsonrpc": {"method": "tools/call", "tool": "docs.read", "arguments": {}}}}
	d.effect == "deny"
	d.rule == "unknown-host"
}

test_higher_risk_wins_within_an_effect if {
	d := pick({
		{"effect": "approve", "rule": "a", "risk": "medium"},
		{"effect": "approve", "rule": "b", "risk": "critical"},
		{"effect": "allow", "rule": "c", "risk": "low"},
	})
	d.rule == "b"
}

test_deny_beats_a_higher_risk_approve if {
	d := pick({{"effect": "approve", "rule": "a", "risk": "critical"}, {"effect": "deny", "rule": "b", "risk": "low"}})
	d.rule == "b"
}

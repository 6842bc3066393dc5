package airlock.rules.hosts

import rego.v1

test_unknown_host_is_denied if {
	d := decision with input as {"request": {"method": "GET", "host": "evil.example.net", "path": "/"}}
	d.effect == "deny"
	d.rule == "unknown-host"
}

test_missing_host_is_denied if {
	d := decision with input as {"request": {"method": "GET", "path": "/"}}
	d.rule == "unknown-host"
}

test_listed_method_is_allowed if {
	d := decision with input as {"request": {"method": "GET", "host": "api.example.com", "path": "/v1/reports"}}
	d.effect == "allow"
	d.rule == "known-host-read"
}

test_unlisted_method_on_known_host_is_left_to_other_rules if {
	not decision with input as {"request": {"method": "DELETE", "host": "api.example.com", "path": "/v1/users/1"}}
}

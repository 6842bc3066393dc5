# Tests of the starter policy: `airlock policy test <this directory>`.
package airlock_test

import rego.v1

import data.airlock

test_reads_pass if {
	airlock.decision.effect == "allow" with input as {"request": {"method": "GET", "path": "/v1/items"}}
}

test_writes_wait_for_a_reviewer if {
	d := airlock.decision with input as {"request": {"method": "POST", "path": "/v1/items"}}
	d.effect == "approve"
	d.approvers.groups == ["reviewers"]
	d.credential == "upstream"
}

test_other_methods_are_denied if {
	airlock.decision.effect == "deny" with input as {"request": {"method": "TRACE", "path": "/"}}
}

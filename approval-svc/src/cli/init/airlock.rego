# Starter policy written by `airlock init`: agents may read on their own; anything that
# changes something waits for a human in the group `reviewers`, and once approved goes
# upstream with a short-lived JWT the agent never sees. Everything else is denied.
#
# Edit it, check it with `airlock policy test <this directory>`, and regenerate the
# filter's configuration with `airlock init --dir <dir> --envoy-only` (docs/first-hour.md).
package airlock

import rego.v1

default decision := {"effect": "deny", "rule": "default-deny", "reason": "no rule allows this call"}

read_methods := {"GET", "HEAD", "OPTIONS"}

write_methods := {"POST", "PUT", "PATCH", "DELETE"}

decision := {"effect": "allow", "rule": "reads", "risk": "low", "reason": "read-only call"} if {
	read_methods[input.request.method]
} else := {
	"effect": "approve",
	"rule": "writes-need-a-human",
	"risk": "high",
	"reason": sprintf("%s %s changes something", [input.request.method, input.request.path]),
	"approvers": {"groups": ["reviewers"], "quorum": 1},
	"expires_in": "15m",
	"credential": "upstream",
	"reuse": "once",
} if {
	write_methods[input.request.method]
}

# hosts — the default that denies unknown hosts.
#
# Gates:  every request. A host that is not listed in `data.hosts` is denied outright
#         (other modules cannot override a deny). A listed host allows the methods its
#         entry names, typically reads; anything else is left to the other modules and
#         finally to the library's default deny.
# Input:  input.request.host, input.request.method
# Data:   data.hosts["<host>"] = {"allow_methods": {"GET": true, "HEAD": true}}
#         (an empty `allow_methods` lists a host whose every call another rule must allow)
# Examples:
#   GET  api.example.com /v1/reports  → allow known-host-read (low)
#   GET  evil.example.net /           → deny  unknown-host (high)
#   POST api.example.com /v1/things   → (nothing here; default deny unless a rule allows)
package airlock.rules.hosts

import rego.v1

# `not known_host`, not `not data.hosts[input.request.host]`: with no host, OPA (and
# the filter's engine, patches/regorus-0.14.1/0008) evaluates the index before the
# negation and the rule is undefined. Through a helper rule, no host is not known: deny.
known_host if data.hosts[input.request.host]

decision := {
	"effect": "deny", "rule": "unknown-host", "risk": "high",
	"reason": "this host is not on the agent allow-list",
} if {
	not known_host
} else := {
	"effect": "allow", "rule": "known-host-read", "risk": "low",
	"reason": "this method is allowed on this host",
} if {
	data.hosts[input.request.host].allow_methods[input.request.method]
}

# exports — data exports to external storage.
#
# Gates:  calls that move data out: the export APIs listed per host, uploads (PUT/POST)
#         to object-storage hosts, and any write to a host on the block list.
# Input:  input.request.host, .method, .path, .body.destination.uri (export APIs)
# Data:   data.exports.routes["<host>"]["<path>"] = "<credential profile>"
#         data.exports.internal_destinations["<uri>"] = true   (stays inside: allowed)
#         data.exports.storage_hosts["<host>"] = "<credential profile>"
#         data.exports.blocked_hosts["<host>"] = true           (never upload here)
#         data.exports.approvers = {"groups": [...], "quorum": n}
# Examples:
#   POST api.example.com /v1/exports {"destination": {"uri": "s3://corp-analytics"}}
#        → allow   data-export-internal (low)
#   POST api.example.com /v1/exports {"destination": {"uri": "s3://partner"}}
#        → approve data-export (high), credential export-api, reuse once, 15m,
#          redacts the destination credentials shown to reviewers
#   PUT  partner-share.s3.amazonaws.com /dump.csv → approve data-export-storage (high)
#   POST pastebin.com /api → deny data-export-blocked (critical)
package airlock.rules.exports

import rego.v1

writes := {"POST": true, "PUT": true, "PATCH": true}

decision := {
	"effect": "deny", "rule": "data-export-blocked", "risk": "critical",
	"reason": "uploads to this host are blocked: it is not company storage",
} if {
	writes[input.request.method]
	data.exports.blocked_hosts[input.request.host]
} else := {
	"effect": "allow", "rule": "data-export-internal", "risk": "low",
	"reason": "export to company-internal storage",
} if {
	input.request.method == "POST"
	data.exports.routes[input.request.host][input.request.path]
	data.exports.internal_destinations[input.request.body.destination.uri]
} else := {
	"effect": "approve", "rule": "data-export", "risk": "high",
	"reason": "bulk data export leaves the company boundary",
	"approvers": data.exports.approvers,
	"expires_in": "15m", "reuse": "once",
	"credential": data.exports.routes[input.request.host][input.request.path],
	"redact": ["request.body.destination.credentials"],
} if {
	input.request.method == "POST"
	data.exports.routes[input.request.host][input.request.path]
} else := {
	"effect": "approve", "rule": "data-export-storage", "risk": "high",
	"reason": "upload to external object storage",
	"approvers": data.exports.approvers,
	"expires_in": "15m", "reuse": "once",
	"credential": data.exports.storage_hosts[input.request.host],
} if {
	writes[input.request.method]
	data.exports.storage_hosts[input.request.host]
}

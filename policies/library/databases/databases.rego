# databases — database dumps and bulk reads.
#
# Gates:  dump/backup-export endpoints of the database admin service, AWS RDS snapshot and
#         export actions, Cloud SQL `export`, and query APIs of the warehouse when a read
#         is unbounded or larger than the row limit. Bounded reads are allowed.
# Input:  input.request.host, .method, .path, .query.Action / .body.Action (AWS),
#         .body.table, .body.limit, .query.limit (query APIs)
# Data:   data.databases.dump_routes["<host>"]["<path>"] = true,
#         data.databases.aws_hosts, data.databases.aws_actions["<Action>"] = "<risk>",
#         data.databases.gcp_hosts, data.databases.query_routes["<host>"]["<path>"] = true,
#         data.databases.max_rows (number), data.databases.sensitive_tables["<table>"],
#         data.databases.approvers, data.databases.dump_approvers
# Examples:
#   POST db-admin.corp.example /v1/dumps               → approve db-dump (critical), 2 of dba
#   POST rds.us-east-1.amazonaws.com /?Action=StartExportTask → approve db-dump (critical)
#   POST warehouse.corp.example /v1/query {"table": "orders", "limit": 100}   → allow db-bounded-read
#   POST warehouse.corp.example /v1/query {"table": "orders", "limit": 50000} → approve db-bulk-read
#   POST warehouse.corp.example /v1/query {"table": "users"} (no limit)      → approve db-bulk-read (high)
package airlock.rules.databases

import rego.v1

parts := split(input.request.path, "/")

aws_action := input.request.query.Action[0]

aws_action := input.request.body.Action if not input.request.query.Action

dump_risk := "critical" if {
	input.request.method == "POST"
	data.databases.dump_routes[input.request.host][input.request.path]
}

dump_risk := r if {
	data.databases.aws_hosts[input.request.host]
	r := data.databases.aws_actions[aws_action]
}

# Cloud SQL: POST /v1/projects/{p}/instances/{i}/export
dump_risk := "critical" if {
	input.request.method == "POST"
	data.databases.gcp_hosts[input.request.host]
	parts[count(parts) - 1] == "export"
}

query_call if {
	input.request.method == "POST"
	data.databases.query_routes[input.request.host][input.request.path]
}

# The row limit the call asks for: a JSON number in the body, else a plain integer in
# the query string (`?limit=500`). Anything else — a string, `false`, a fraction in the
# query — counts as a bulk read. (A body number the filter's engine cannot hold exactly,
# such as 1000.00000000000001, never reaches the policy: the filter refuses the body.)
body_has_limit if {
	_ = input.request.body.limit
}

row_limit := input.request.body.limit if is_number(input.request.body.limit)

row_limit := to_number(query_limit) if {
	not body_has_limit
	query_limit = input.request.query.limit[0]
	regex.match(`^[0-9]{1,9}$`, query_limit)
}

bulk if row_limit > data.databases.max_rows

# A limit was given but is not one the policy can read: treat it as no limit at all.
bulk if {
	limit_given
	not row_limit
}

limit_given if body_has_limit

limit_given if {
	_ = input.request.query.limit
}

bulk if {
	not row_limit
	data.databases.sensitive_tables[input.request.body.table]
}

decision := {
	"effect": "approve", "rule": "db-dump", "risk": dump_risk,
	"reason": "dumps or exports a whole database",
	"approvers": data.databases.dump_approvers,
	"expires_in": "30m", "reuse": "once", "credential": "db-dump",
} if {
	dump_risk
} else := {
	"effect": "approve", "rule": "db-bulk-read", "risk": "high",
	"reason": "bulk read: no row limit on a sensitive table, or more rows than allowed",
	"approvers": data.databases.approvers,
	"expires_in": "15m", "reuse": "once",
} if {
	query_call
	bulk
} else := {
	"effect": "allow", "rule": "db-bounded-read", "risk": "low",
	"reason": "bounded query",
} if {
	query_call
}

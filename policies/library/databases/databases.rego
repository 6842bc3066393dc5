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

row_limit := input.request.body.limit

row_limit := to_number(input.request.query.limit[0]) if not input.request.body.limit

bulk if {
	is_number(row_limit)
	row_limit > data.databases.max_rows
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

package airlock.rules.databases

import rego.v1

q(body) := {"request": {"method": "POST", "host": "warehouse.corp.example", "path": "/v1/query", "query": {}, "body": body}}

test_dump_route_needs_two_dbas if {
	d := decision with input as {"request": {"method": "POST", "host": "db-admin.corp.example", "path": "/v1/dumps", "query": {}}}
	d.effect == "approve"
	d.rule == "db-dump"
	d.risk == "critical"
	d.approvers == {"groups": ["dba"], "quorum": 2}
}

test_rds_export_task if {
	d := decision with input as {"request": {"method": "POST", "host": "rds.us-east-1.amazonaws.com", "path": "/", "query": {"Action": ["StartExportTask"]}}}
	d.rule == "db-dump"
}

test_rds_describe_is_not_gated if {
	not decision with input as {"request": {"method": "POST", "host": "rds.us-east-1.amazonaws.com", "path": "/", "query": {"Action": ["DescribeDBInstances"]}}}
}

test_cloud_sql_export if {
	d := decision with input as {"request": {"method": "POST", "host": "sqladmin.googleapis.com", "path": "/v1/projects/p/instances/main/export", "query": {}}}
	d.rule == "db-dump"
}

test_bounded_read_is_allowed if {
	d := decision with input as q({"table": "orders", "limit": 100})
	d.effect == "allow"
	d.rule == "db-bounded-read"
}

test_large_read_needs_approval if {
	d := decision with input as q({"table": "orders", "limit": 50000})
	d.effect == "approve"
	d.rule == "db-bulk-read"
}

test_limit_in_query_string if {
	d := decision with input as {"request": {"method": "POST", "host": "warehouse.corp.example", "path": "/v1/query", "query": {"limit": ["5000"]}, "body": {"table": "orders"}}}
	d.rule == "db-bulk-read"
}

test_unbounded_sensitive_read_needs_approval if {
	d := decision with input as q({"table": "users"})
	d.rule == "db-bulk-read"
}

test_unbounded_ordinary_read_is_allowed if {
	d := decision with input as q({"table": "orders"})
	d.rule == "db-bounded-read"
}

test_fractional_query_limit_is_a_bulk_read if {
	d := decision with input as {"request": {"method": "POST", "host": "warehouse.corp.example", "path": "/v1/query", "query": {"limit": ["1000.00000000000001"]}, "body": {"table": "orders"}}}
	d.rule == "db-bulk-read"
}

test_non_number_body_limit_is_a_bulk_read if {
	d := decision with input as {"request": {"method": "POST", "host": "warehouse.corp.example", "path": "/v1/query", "query": {"limit": ["5"]}, "body": {"table": "orders", "limit": false}}}
	d.rule == "db-bulk-read"
}

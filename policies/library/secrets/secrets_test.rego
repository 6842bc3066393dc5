package airlock.rules.secrets

import rego.v1

req(method, path) := {"request": {"method": method, "host": "vault.corp.example", "path": path, "headers": {}},
	"agent": {"id": "spiffe://corp/agent/ops-bot"}}

test_vault_read_needs_approval if {
	d := decision with input as req("GET", "/v1/secret/data/prod/db")
	d.effect == "approve"
	d.rule == "secret-read"
	d.risk == "high"
	d.credential == "vault-read"
	d.reuse == "once"
}

test_dynamic_db_credentials_are_critical if {
	d := decision with input as req("GET", "/v1/database/creds/readonly")
	d.risk == "critical"
}

test_granted_path_is_allowed if {
	d := decision with input as {"request": {"method": "GET", "host": "vault.corp.example", "path": "/v1/secret/data/report-bot/config", "headers": {}},
		"agent": {"id": "spiffe://corp/agent/report-bot"}}
	d.effect == "allow"
	d.rule == "secret-read-granted"
}

test_grant_is_per_agent if {
	d := decision with input as req("GET", "/v1/secret/data/report-bot/config")
	d.rule == "secret-read"
}

test_vault_write_redacts_the_secret if {
	d := decision with input as req("PUT", "/v1/secret/data/prod/db")
	d.rule == "secret-write"
	d.redact == ["request.body.data", "request.body.stringData"]
}

test_vault_sys_is_denied if {
	d := decision with input as req("GET", "/v1/sys/policies/acl")
	d.effect == "deny"
	d.rule == "vault-sys-access"
}

test_aws_secrets_manager_read if {
	d := decision with input as {"request": {"method": "POST", "host": "secretsmanager.us-east-1.amazonaws.com", "path": "/",
		"headers": {"x-amz-target": "secretsmanager.GetSecretValue"}}}
	d.effect == "approve"
	d.rule == "secret-read"
}

test_aws_list_secrets_is_not_a_read if {
	not decision with input as {"request": {"method": "POST", "host": "secretsmanager.us-east-1.amazonaws.com", "path": "/",
		"headers": {"x-amz-target": "secretsmanager.ListSecrets"}}}
}

test_k8s_secret_list_is_denied if {
	d := decision with input as {"request": {"method": "GET", "host": "k8s.corp.example", "path": "/api/v1/namespaces/prod/secrets", "headers": {}}}
	d.rule == "secret-bulk-read"
}

test_k8s_single_secret_read_needs_approval if {
	d := decision with input as {"request": {"method": "GET", "host": "k8s.corp.example", "path": "/api/v1/namespaces/prod/secrets/db-password", "headers": {}}}
	d.rule == "secret-read"
}

test_k8s_secret_create_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "k8s.corp.example", "path": "/api/v1/namespaces/prod/secrets", "headers": {}}}
	d.rule == "secret-write"
}

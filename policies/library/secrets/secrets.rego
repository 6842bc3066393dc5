# secrets — secret and credential reads (and writes).
#
# Gates:  HashiCorp Vault (`/v1/<mount>/…`), AWS Secrets Manager / SSM (by the
#         `x-amz-target` header), Kubernetes Secrets. Reads need approval unless the path
#         is granted to this agent; listing every secret at once and Vault's `sys/` are
#         denied.
# Input:  input.request.host, .method, .path, .headers["x-amz-target"], input.agent.id
#         (the filter's `input_headers` must include x-amz-target if it is restricted)
# Data:   data.secrets.vault_hosts, data.secrets.vault_mounts["<mount>"] = "<risk>",
#         data.secrets.vault_denied_mounts["sys"],
#         data.secrets.agent_grants["<agent id>"]["<path>"] = true,
#         data.secrets.aws_targets["secretsmanager.GetSecretValue"] = "<risk>",
#         data.secrets.approvers, data.kubernetes.api_hosts (library data.json)
# Examples:
#   GET vault.corp.example /v1/secret/data/prod/db             → approve secret-read (high),
#        credential vault-read, once, 10m
#   GET … /v1/secret/data/report-bot/config by report-bot      → allow secret-read-granted
#   PUT … /v1/secret/data/prod/db                              → approve secret-write, body data redacted
#   GET vault.corp.example /v1/sys/policies                    → deny vault-sys-access
#   GET k8s.corp.example /api/v1/namespaces/prod/secrets       → deny secret-bulk-read
package airlock.rules.secrets

import rego.v1

reads := {"GET": true, "HEAD": true, "LIST": true}

writes := {"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

parts := split(input.request.path, "/")

vault if data.secrets.vault_hosts[input.request.host]

# ["", "v1", "<mount>", ...]
vault_risk := data.secrets.vault_mounts[parts[2]] if vault

k8s_secret if {
	data.kubernetes.api_hosts[input.request.host]
	some p in parts
	p == "secrets"
}

k8s_secret_list if {
	k8s_secret
	parts[count(parts) - 1] == "secrets"
}

aws_risk := data.secrets.aws_targets[input.request.headers["x-amz-target"]]

# Exclusive rules with values that are always defined rather than an `else` chain whose
# clauses bind their value in the body (see iam.rego `risk`).
vault_read if {
	reads[input.request.method]
	vault_risk
}

read_risk := vault_risk if vault_read

# Positive guards first, negations last: the filter's rule index reads a rule's leading
# guards to skip it for requests it cannot apply to (policies/library/README.md).
read_risk := aws_risk if {
	aws_risk
	not vault_read
}

read_risk := "high" if {
	k8s_secret
	reads[input.request.method]
	not vault_read
	not aws_risk
}

decision := {
	"effect": "deny", "rule": "vault-sys-access", "risk": "critical",
	"reason": "agents may not use Vault's system backend",
} if {
	vault
	data.secrets.vault_denied_mounts[parts[2]]
} else := {
	"effect": "deny", "rule": "secret-bulk-read", "risk": "critical",
	"reason": "listing every secret of a namespace is not allowed; read the one you need",
} if {
	reads[input.request.method]
	k8s_secret_list
} else := {
	"effect": "allow", "rule": "secret-read-granted", "risk": "low",
	"reason": "this agent is granted this secret",
} if {
	reads[input.request.method]
	data.secrets.agent_grants[input.agent.id][input.request.path]
} else := {
	"effect": "approve", "rule": "secret-read", "risk": read_risk,
	"reason": "reads a secret or credential",
	"approvers": data.secrets.approvers,
	"expires_in": "10m", "reuse": "once", "credential": "vault-read",
} if {
	read_risk
} else := {
	"effect": "approve", "rule": "secret-write", "risk": "high",
	"reason": "writes or deletes a secret",
	"approvers": data.secrets.approvers,
	"expires_in": "10m", "reuse": "once", "credential": "vault-write",
	"redact": ["request.body.data", "request.body.stringData"],
} if {
	writes[input.request.method]
	vault_risk
} else := {
	"effect": "approve", "rule": "secret-write", "risk": "high",
	"reason": "writes or deletes a secret",
	"approvers": data.secrets.approvers,
	"expires_in": "10m", "reuse": "once", "credential": "vault-write",
	"redact": ["request.body.data", "request.body.stringData"],
} if {
	writes[input.request.method]
	k8s_secret
}

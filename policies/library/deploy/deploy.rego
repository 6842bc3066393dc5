# deploy — production deployments and configuration pushes.
#
# Gates:  writes to deployment / config endpoints of the platform's deploy service (per
#         host, whose environment is data), GitHub deployments and workflow dispatches
#         targeting a production environment, Kubernetes writes to Deployments,
#         StatefulSets, ConfigMaps… in production namespaces. Non-production is allowed;
#         a frozen environment is denied.
# Input:  input.request.host, .method, .path, .body.environment (GitHub deployments),
#         .body.inputs.environment (GitHub workflow dispatch)
# Data:   data.deploy.hosts["<host>"] = {"environment": "<env>", "routes": {"<path>": "<kind>"}}
#         with <kind> "deploy" or "config-push",
#         data.deploy.production_environments["<env>"], data.deploy.frozen_environments["<env>"],
#         data.deploy.github_hosts, data.deploy.production_namespaces["<ns>"],
#         data.deploy.k8s_resources["deployments"] = "<kind>", data.deploy.approvers,
#         data.kubernetes.api_hosts (library data.json)
# Examples:
#   POST deploy.corp.example /v1/deployments          → approve production-deploy (high), 1h, once
#   POST deploy.corp.example /v1/config                → approve production-config-push (high)
#   POST deploy.staging.corp.example /v1/deployments  → allow non-production-deploy (low)
#   POST api.github.com /repos/o/r/deployments {"environment": "production"} → approve
#   PATCH k8s.corp.example /apis/apps/v1/namespaces/prod/deployments/web → approve
#   any of the above while data.deploy.frozen_environments.production → deny deploy-freeze
package airlock.rules.deploy

import rego.v1

writes := {"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

parts := split(input.request.path, "/")

# What the call deploys, and where: [kind, environment].
target := [kind, site.environment] if {
	writes[input.request.method]
	site := data.deploy.hosts[input.request.host]
	kind := site.routes[input.request.path]
}

# GitHub: POST /repos/{owner}/{repo}/deployments
target := ["deploy", input.request.body.environment] if {
	input.request.method == "POST"
	data.deploy.github_hosts[input.request.host]
	count(parts) == 5
	parts[4] == "deployments"
}

# GitHub: POST /repos/{owner}/{repo}/actions/workflows/{id}/dispatches
target := ["deploy", input.request.body.inputs.environment] if {
	input.request.method == "POST"
	data.deploy.github_hosts[input.request.host]
	count(parts) == 8
	parts[7] == "dispatches"
}

# Kubernetes: …/namespaces/{ns}/{resource}[/name]; namespaces are their environment.
target := [kind, env] if {
	writes[input.request.method]
	data.kubernetes.api_hosts[input.request.host]
	some i, p in parts
	p == "namespaces"
	kind := data.deploy.k8s_resources[parts[i + 2]]
	env := data.deploy.production_namespaces[parts[i + 1]]
}

production if data.deploy.production_environments[target[1]]

rule_names := {"deploy": "production-deploy", "config-push": "production-config-push"}

decision := {
	"effect": "deny", "rule": "deploy-freeze", "risk": "high",
	"reason": "this environment is in a change freeze",
} if {
	data.deploy.frozen_environments[target[1]]
} else := {
	"effect": "approve", "rule": rule_names[target[0]], "risk": "high",
	"reason": "changes production",
	"approvers": data.deploy.approvers,
	"expires_in": "1h", "reuse": "once", "credential": "deployer",
} if {
	production
} else := {
	"effect": "allow", "rule": "non-production-deploy", "risk": "low",
	"reason": "deploys outside production",
} if {
	target
}

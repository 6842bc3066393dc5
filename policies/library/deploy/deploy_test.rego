package airlock.rules.deploy

import rego.v1

test_production_deploy_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "deploy.corp.example", "path": "/v1/deployments"}}
	d.effect == "approve"
	d.rule == "production-deploy"
	d.approvers.groups == ["release-managers"]
	d.expires_in == "1h"
}

test_production_config_push_needs_approval if {
	d := decision with input as {"request": {"method": "PUT", "host": "deploy.corp.example", "path": "/v1/config"}}
	d.rule == "production-config-push"
}

test_staging_deploy_is_allowed if {
	d := decision with input as {"request": {"method": "POST", "host": "deploy.staging.corp.example", "path": "/v1/deployments"}}
	d.effect == "allow"
	d.rule == "non-production-deploy"
}

test_reading_deployments_is_not_gated if {
	not decision with input as {"request": {"method": "GET", "host": "deploy.corp.example", "path": "/v1/deployments"}}
}

test_freeze_denies if {
	d := decision with input as {"request": {"method": "POST", "host": "deploy.corp.example", "path": "/v1/deployments"}}
		with data.deploy.frozen_environments as {"production": true}
	d.effect == "deny"
	d.rule == "deploy-freeze"
}

test_github_production_deployment if {
	d := decision with input as {"request": {"method": "POST", "host": "api.github.com", "path": "/repos/corp/web/deployments",
		"body": {"ref": "main", "environment": "production"}}}
	d.rule == "production-deploy"
}

test_github_staging_deployment_is_allowed if {
	d := decision with input as {"request": {"method": "POST", "host": "api.github.com", "path": "/repos/corp/web/deployments",
		"body": {"ref": "main", "environment": "staging"}}}
	d.rule == "non-production-deploy"
}

test_github_workflow_dispatch_to_production if {
	d := decision with input as {"request": {"method": "POST", "host": "api.github.com", "path": "/repos/corp/web/actions/workflows/deploy.yml/dispatches",
		"body": {"ref": "main", "inputs": {"environment": "prod"}}}}
	d.rule == "production-deploy"
}

test_k8s_production_deployment_patch if {
	d := decision with input as {"request": {"method": "PATCH", "host": "k8s.corp.example", "path": "/apis/apps/v1/namespaces/prod/deployments/web"}}
	d.rule == "production-deploy"
}

test_k8s_production_configmap if {
	d := decision with input as {"request": {"method": "PUT", "host": "k8s.corp.example", "path": "/api/v1/namespaces/payments-prod/configmaps/flags"}}
	d.rule == "production-config-push"
}

test_k8s_dev_namespace_is_not_gated_here if {
	not decision with input as {"request": {"method": "PATCH", "host": "k8s.corp.example", "path": "/apis/apps/v1/namespaces/dev/deployments/web"}}
}

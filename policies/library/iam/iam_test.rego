package airlock.rules.iam

import rego.v1

aws(query) := {"request": {"method": "POST", "host": "iam.amazonaws.com", "path": "/", "query": query}}

test_attach_role_policy_needs_two_security_approvers if {
	d := decision with input as aws({"Action": ["AttachRolePolicy"], "PolicyArn": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]})
	d.effect == "approve"
	d.rule == "iam-change"
	d.risk == "high"
	d.approvers == {"groups": ["security"], "quorum": 2}
}

test_admin_policy_is_denied if {
	d := decision with input as aws({"Action": ["AttachUserPolicy"], "PolicyArn": ["arn:aws:iam::aws:policy/AdministratorAccess"]})
	d.effect == "deny"
	d.rule == "iam-admin-grant"
}

test_invisible_action_is_critical if {
	d := decision with input as aws({})
	d.effect == "approve"
	d.risk == "critical"
}

test_json_body_action if {
	d := decision with input as {"request": {"method": "POST", "host": "iam.amazonaws.com", "path": "/", "query": {}, "body": {"Action": "CreateAccessKey"}}}
	d.rule == "iam-change"
	d.risk == "critical"
}

test_read_action_is_allowed if {
	d := decision with input as aws({"Action": ["ListRoles"]})
	d.effect == "allow"
	d.rule == "iam-read"
}

test_gcp_set_iam_policy if {
	d := decision with input as {"request": {"method": "POST", "host": "cloudresourcemanager.googleapis.com", "path": "/v1/projects/corp-prod:setIamPolicy",
		"body": {"policy": {"bindings": [{"role": "roles/viewer", "members": ["user:x@corp.example"]}]}}}}
	d.effect == "approve"
	d.rule == "iam-change"
}

test_gcp_owner_grant_is_denied if {
	d := decision with input as {"request": {"method": "POST", "host": "cloudresourcemanager.googleapis.com", "path": "/v1/projects/corp-prod:setIamPolicy",
		"body": {"policy": {"bindings": [{"role": "roles/owner", "members": ["user:x@corp.example"]}]}}}}
	d.rule == "iam-admin-grant"
}

test_gcp_get_iam_policy_is_not_a_change if {
	not decision with input as {"request": {"method": "POST", "host": "cloudresourcemanager.googleapis.com", "path": "/v1/projects/corp-prod:getIamPolicy"}}
}

test_k8s_cluster_admin_binding_is_denied if {
	d := decision with input as {"request": {"method": "POST", "host": "k8s.corp.example", "path": "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
		"body": {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}}}
	d.rule == "iam-admin-grant"
}

test_k8s_role_binding_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "k8s.corp.example", "path": "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
		"body": {"roleRef": {"kind": "Role", "name": "log-reader"}}}}
	d.effect == "approve"
	d.risk == "high"
}

test_k8s_rbac_read_is_not_gated_here if {
	not decision with input as {"request": {"method": "GET", "host": "k8s.corp.example", "path": "/apis/rbac.authorization.k8s.io/v1/clusterroles"}}
}

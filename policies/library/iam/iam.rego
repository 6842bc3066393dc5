# iam — IAM, role and privilege changes.
#
# Gates:  AWS IAM query/JSON API actions, Google Cloud `:setIamPolicy` calls, and writes
#         to Kubernetes RBAC objects (roles, role bindings, cluster roles...).
# Input:  input.request.host, .method, .path, .query.Action / .body.Action,
#         .query.PolicyArn / .body.PolicyArn, .body.policy.bindings[].role (GCP),
#         .body.roleRef.name (Kubernetes)
# Data:   data.iam.aws_hosts, data.iam.aws_actions["<Action>"] = "<risk>",
#         data.iam.aws_read_actions["<Action>"], data.iam.denied_policy_arns["<arn>"],
#         data.iam.gcp_hosts, data.iam.gcp_verbs["setIamPolicy"] = "<risk>",
#         data.iam.k8s_rbac_resources["rolebindings"] = "<risk>",
#         data.iam.denied_roles["<role>"], data.iam.approvers,
#         data.kubernetes.api_hosts (library data.json)
# Examples:
#   POST iam.amazonaws.com /?Action=AttachRolePolicy&PolicyArn=…/ReadOnlyAccess
#        → approve iam-change (high), quorum 2 of security
#   … PolicyArn=arn:aws:iam::aws:policy/AdministratorAccess → deny iam-admin-grant
#   POST iam.amazonaws.com / (form body, action not visible) → approve iam-change (critical)
#   POST iam.amazonaws.com /?Action=ListRoles → allow iam-read
#   POST cloudresourcemanager.googleapis.com /v1/projects/p:setIamPolicy → approve iam-change
#   POST k8s.corp.example /apis/rbac.authorization.k8s.io/v1/namespaces/x/rolebindings
#        with roleRef.name cluster-admin → deny iam-admin-grant
package airlock.rules.iam

import rego.v1

writes := {"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

# AWS: the Action is in the query string (query API) or a JSON body.
aws_action := input.request.query.Action[0]

aws_action := input.request.body.Action if not input.request.query.Action

aws_policy_arns contains arn if arn := input.request.query.PolicyArn[0]

aws_policy_arns contains arn if arn := input.request.body.PolicyArn

parts := split(input.request.path, "/")

# Google: custom verb after the last ':' of the path (`…/projects/p:setIamPolicy`).
gcp_verb := split(parts[count(parts) - 1], ":")[1]

k8s_rbac_risks contains r if {
	some p in parts
	r := data.iam.k8s_rbac_resources[p]
}

k8s_rbac_risk := "critical" if "critical" in k8s_rbac_risks
else := "high" if "high" in k8s_rbac_risks
else := "medium" if "medium" in k8s_rbac_risks

# (Iteration lives in rule bodies: the RVM compiler rejects `_` in a rule head.)
granted_roles contains role if {
	some binding in input.request.body.policy.bindings
	role := binding.role
}

granted_roles contains role if role := input.request.body.roleRef.name

admin_grant if {
	some arn in aws_policy_arns
	data.iam.denied_policy_arns[arn]
}

admin_grant if {
	some role in granted_roles
	data.iam.denied_roles[role]
}

iam_call if data.iam.aws_hosts[input.request.host]

iam_call if {
	data.iam.gcp_hosts[input.request.host]
	data.iam.gcp_verbs[gcp_verb]
}

iam_call if {
	data.kubernetes.api_hosts[input.request.host]
	writes[input.request.method]
	k8s_rbac_risk
}

# Risk of the change: per AWS action (critical when the action is not visible, e.g. a
# form-encoded body), per Google verb, per Kubernetes RBAC resource. Written as
# exclusive rules with values that are always defined, not an `else` chain whose
# clauses bind their value in the body: regorus 0.14.1's RVM ends such a chain at an
# undefined value instead of falling through (docs/opa-differences.md).
aws_host if data.iam.aws_hosts[input.request.host]

default aws_risk := "critical"

aws_risk := data.iam.aws_actions[aws_action]

gcp_risk := data.iam.gcp_verbs[gcp_verb]

risk := aws_risk if aws_host

risk := gcp_risk if {
	not aws_host
	gcp_risk
}

risk := k8s_rbac_risk if {
	not aws_host
	not gcp_risk
	k8s_rbac_risk
}

decision := {
	"effect": "deny", "rule": "iam-admin-grant", "risk": "critical",
	"reason": "agents may not grant administrator or owner roles",
} if {
	iam_call
	admin_grant
} else := {
	"effect": "allow", "rule": "iam-read", "risk": "low",
	"reason": "read-only IAM action",
} if {
	data.iam.aws_hosts[input.request.host]
	data.iam.aws_read_actions[aws_action]
} else := {
	"effect": "approve", "rule": "iam-change", "risk": risk,
	"reason": "changes who may do what: IAM, role or privilege change",
	"approvers": data.iam.approvers,
	"expires_in": "30m", "reuse": "once", "credential": "iam-admin",
} if {
	iam_call
}

# network — network rule and firewall changes.
#
# Gates:  AWS EC2 security-group / network-ACL actions, Google Cloud firewall and route
#         writes, Kubernetes NetworkPolicy / Ingress writes. A rule that opens a port to
#         the whole internet (0.0.0.0/0, ::/0) is denied.
# Input:  input.request.host, .method, .path, .query (AWS query API: Action and the
#         CidrIp values), .body.Action, .body.sourceRanges (GCP firewall)
# Data:   data.network.aws_hosts, data.network.aws_actions["<Action>"] = "<risk>",
#         data.network.gcp_hosts, data.network.gcp_resources["firewalls"] = "<risk>",
#         data.network.k8s_resources["networkpolicies"] = "<risk>",
#         data.network.open_cidrs["0.0.0.0/0"], data.network.approvers,
#         data.kubernetes.api_hosts (library data.json)
# Examples:
#   POST ec2.us-east-1.amazonaws.com /?Action=AuthorizeSecurityGroupIngress&…CidrIp=10.0.0.0/8
#        → approve network-change (high), netsec, 30m, once
#   … CidrIp=0.0.0.0/0 → deny network-open-to-world (critical)
#   POST compute.googleapis.com /compute/v1/projects/p/global/firewalls → approve network-change
#   DELETE k8s.corp.example /apis/networking.k8s.io/v1/namespaces/x/networkpolicies/deny-all
#        → approve network-change (high)
package airlock.rules.network

import rego.v1

writes := {"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

aws_action := input.request.query.Action[0]

aws_action := input.request.body.Action if not input.request.query.Action

parts := split(input.request.path, "/")

risks contains r if {
	data.network.aws_hosts[input.request.host]
	r := data.network.aws_actions[aws_action]
}

risks contains r if {
	data.network.gcp_hosts[input.request.host]
	writes[input.request.method]
	some p in parts
	r := data.network.gcp_resources[p]
}

risks contains r if {
	data.kubernetes.api_hosts[input.request.host]
	writes[input.request.method]
	some p in parts
	r := data.network.k8s_resources[p]
}

# Any query value (AWS `IpPermissions.N.IpRanges.M.CidrIp`) or GCP source range that is
# the whole internet.
open_to_world if {
	some values in input.request.query
	some v in values
	data.network.open_cidrs[v]
}

open_to_world if {
	some v in input.request.body.sourceRanges
	data.network.open_cidrs[v]
}

risk := "critical" if "critical" in risks
else := "high" if "high" in risks
else := "medium"

decision := {
	"effect": "deny", "rule": "network-open-to-world", "risk": "critical",
	"reason": "network rule would open access to the whole internet",
} if {
	count(risks) > 0
	open_to_world
} else := {
	"effect": "approve", "rule": "network-change", "risk": risk,
	"reason": "changes network rules or firewalls",
	"approvers": data.network.approvers,
	"expires_in": "30m", "reuse": "once", "credential": "network-admin",
} if {
	count(risks) > 0
}

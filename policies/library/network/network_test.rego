package airlock.rules.network

import rego.v1

test_security_group_ingress_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "ec2.us-east-1.amazonaws.com", "path": "/",
		"query": {"Action": ["AuthorizeSecurityGroupIngress"], "IpPermissions.1.IpRanges.1.CidrIp": ["10.0.0.0/8"]}}}
	d.effect == "approve"
	d.rule == "network-change"
	d.risk == "high"
	d.approvers.groups == ["netsec"]
}

test_open_to_world_is_denied if {
	d := decision with input as {"request": {"method": "POST", "host": "ec2.us-east-1.amazonaws.com", "path": "/",
		"query": {"Action": ["AuthorizeSecurityGroupIngress"], "IpPermissions.1.IpRanges.1.CidrIp": ["0.0.0.0/0"]}}}
	d.effect == "deny"
	d.rule == "network-open-to-world"
}

test_describe_is_not_a_change if {
	not decision with input as {"request": {"method": "POST", "host": "ec2.us-east-1.amazonaws.com", "path": "/",
		"query": {"Action": ["DescribeSecurityGroups"]}}}
}

test_gcp_firewall_insert if {
	d := decision with input as {"request": {"method": "POST", "host": "compute.googleapis.com", "path": "/compute/v1/projects/p/global/firewalls",
		"query": {}, "body": {"name": "allow-db", "sourceRanges": ["10.1.0.0/16"]}}}
	d.effect == "approve"
}

test_gcp_firewall_open_to_world if {
	d := decision with input as {"request": {"method": "POST", "host": "compute.googleapis.com", "path": "/compute/v1/projects/p/global/firewalls",
		"query": {}, "body": {"sourceRanges": ["::/0"]}}}
	d.rule == "network-open-to-world"
}

test_gcp_firewall_read_is_not_a_change if {
	not decision with input as {"request": {"method": "GET", "host": "compute.googleapis.com", "path": "/compute/v1/projects/p/global/firewalls", "query": {}}}
}

test_k8s_network_policy_delete if {
	d := decision with input as {"request": {"method": "DELETE", "host": "k8s.corp.example",
		"path": "/apis/networking.k8s.io/v1/namespaces/payments/networkpolicies/default-deny", "query": {}}}
	d.effect == "approve"
	d.risk == "high"
}

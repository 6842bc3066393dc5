package airlock.rules.aws

import rego.v1

s3(method, host, path, query) := {"request": {"method": method, "host": host, "path": path, "query": query}}

test_virtual_hosted_put_needs_a_data_owner_and_the_aws_credential if {
	d := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/2026/12.csv", {})
	d.effect == "approve"
	d.rule == "s3-export"
	d.credential == "aws-s3-export"
	d.reuse == "once"
	d.approvers == {"groups": ["data-owners"], "quorum": 1}
}

test_path_style_put_is_the_same_export if {
	d := decision with input as s3("PUT", "s3.eu-west-1.amazonaws.com", "/partner-drop-eu/2026/12.csv", {})
	d.rule == "s3-export"
	d.credential == "aws-s3-export"
}

test_other_buckets_are_denied if {
	d := decision with input as s3("PUT", "attacker-bucket.s3.eu-west-1.amazonaws.com", "/x.csv", {})
	d.effect == "deny"
	d.rule == "s3-export-bucket"
	p := decision with input as s3("PUT", "s3.eu-west-1.amazonaws.com", "/attacker-bucket/x.csv", {})
	p.rule == "s3-export-bucket"
}

test_what_one_object_cannot_cover_is_denied_with_the_reason if {
	sub := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/x.csv", {"acl": [""]})
	sub.rule == "s3-export-unscoped"
	multipart := decision with input as s3("POST", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/x.csv", {"uploads": [""]})
	multipart.rule == "s3-export-unscoped"
	star := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/2026/*.csv", {})
	star.rule == "s3-export-unscoped"
	encoded := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/2026/%2A.csv", {})
	encoded.rule == "s3-export-unscoped"
	bucket_only := decision with input as s3("PUT", "s3.eu-west-1.amazonaws.com", "/corp-aws-exports", {})
	bucket_only.rule == "s3-export-unscoped"
}

test_a_path_or_query_of_another_type_is_unscoped_not_an_error if {
	null_path := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", null, {})
	null_path.rule == "s3-export-unscoped"
	array_path := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", ["/x.csv"], {})
	array_path.rule == "s3-export-unscoped"
	not decision with input as s3("PUT", "s3.eu-west-1.amazonaws.com", null, {})
	odd_query := decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/x.csv", true)
	odd_query.rule == "s3-export-unscoped"
}

test_reads_and_other_hosts_are_not_this_modules if {
	not decision with input as s3("GET", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/2026/12.csv", {})
	not decision with input as s3("PUT", "api.example.com", "/v1/x", {})
	not decision with input as s3("PUT", "corp-aws-exports.s3.us-east-1.amazonaws.com", "/x.csv", {})
}

# The whole library: an S3 export and an IAM role change both carry an aws-sigv4 profile.
test_library_s3_export_and_iam_change_carry_aws_credentials if {
	s := data.airlock.decision with input as s3("PUT", "corp-aws-exports.s3.eu-west-1.amazonaws.com", "/2026/12.csv", {})
	s.rule == "s3-export"
	s.credential == "aws-s3-export"
	i := data.airlock.decision with input as s3("GET", "iam.amazonaws.com", "/", {"Action": ["AttachRolePolicy"], "RoleName": ["app"], "PolicyArn": ["arn:aws:iam::123456789012:policy/exports-read"]})
	i.rule == "iam-change"
	i.credential == "iam-admin"
}

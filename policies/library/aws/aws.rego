# aws — S3 exports signed by an `aws-sigv4` credential: the approval service assumes a
# role with a session policy for exactly the approved object and signs the request, so
# a write the credential cannot narrow to one object is refused here, with the reason,
# rather than sent to reviewers. (IAM changes: the iam module's `iam-change` approvals
# carry credential `iam-admin`; configure that profile as `kind = "aws-sigv4"`,
# `api = "query"`, `service = "iam"` — docs/credentials.md.)
#
# Gates:  writes (PUT, POST, DELETE) to the S3 endpoints listed, virtual-hosted
#         (`<bucket>.<endpoint>`) or path-style (`<endpoint>/<bucket>/<key>`).
# Input:  input.request.host, .method, .path, .query
# Data:   data.aws.s3_endpoints["<endpoint host>"] = "<aws-sigv4 credential profile>"
#         data.aws.export_buckets["<bucket>"] = true   (exports may go there)
#         data.aws.approvers = {"groups": [...], "quorum": n}
# Examples:
#   PUT corp-aws-exports.s3.eu-west-1.amazonaws.com /2026/12.csv
#        → approve s3-export (high), credential aws-s3-export, reuse once, 15m
#   PUT s3.eu-west-1.amazonaws.com /corp-aws-exports/2026/12.csv → the same, path-style
#   PUT other-bucket.s3.eu-west-1.amazonaws.com /x.csv → deny s3-export-bucket
#   PUT corp-aws-exports.s3.eu-west-1.amazonaws.com /x.csv?acl, POST …?uploads,
#       a key with * or ? → deny s3-export-unscoped
package airlock.rules.aws

import rego.v1

writes := {"PUT": true, "POST": true, "DELETE": true}

# A path that is not a string (hostile or mistyped input) has no key: the write is
# refused as unscoped rather than left to a builtin's type error, which OPA raises
# and an engine that answers "undefined" would not.
path := input.request.path if is_string(input.request.path)

segments := split(trim_prefix(path, "/"), "/")

# Path-style: the host is the endpoint, the bucket the first segment.
path_style if data.aws.s3_endpoints[input.request.host]

bucket := segments[0] if path_style

key := concat("/", array.slice(segments, 1, count(segments))) if path_style

# Virtual-hosted: `<bucket>.<endpoint>`.
virtual_endpoint := e if {
	not path_style
	some e, _ in data.aws.s3_endpoints
	endswith(input.request.host, concat("", [".", e]))
}

bucket := trim_suffix(input.request.host, concat("", [".", virtual_endpoint])) if virtual_endpoint

key := trim_prefix(path, "/") if virtual_endpoint

endpoint := input.request.host if path_style

endpoint := virtual_endpoint

s3_write if {
	writes[input.request.method]
	bucket
}

# What a session policy cannot narrow to one object: a sub-resource (?acl, ?uploads,
# ?tagging…), a multipart or batch POST, no key, or a key IAM reads as a pattern.
unscoped if {
	q := input.request.query
	not is_object(q)
}

unscoped if {
	is_object(input.request.query)
	count(input.request.query) > 0
}

unscoped if input.request.method == "POST"

unscoped if key == ""

unscoped if not key

unscoped if regex.match(`[*?]|\$\{|%2[aA]|%3[fF]`, key)

decision := {
	"effect": "deny", "rule": "s3-export-bucket", "risk": "high",
	"reason": "S3 writes go only to the export buckets",
} if {
	s3_write
	not data.aws.export_buckets[bucket]
} else := {
	"effect": "deny", "rule": "s3-export-unscoped", "risk": "medium",
	"reason": "an S3 write the credential cannot narrow to one object (sub-resource, multipart or batch POST, no key, or * ? ${ in the key): send one plain PUT or DELETE of one object",
} if {
	s3_write
	unscoped
} else := {
	"effect": "approve", "rule": "s3-export", "risk": "high",
	"reason": "writes data to S3 outside the agent's own storage",
	"approvers": data.aws.approvers,
	"expires_in": "15m", "reuse": "once",
	"credential": data.aws.s3_endpoints[endpoint],
} if {
	s3_write
}

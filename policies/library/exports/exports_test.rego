package airlock.rules.exports

import rego.v1

test_internal_export_is_allowed if {
	d := decision with input as {"request": {"method": "POST", "host": "api.example.com", "path": "/v1/exports",
		"body": {"destination": {"uri": "s3://corp-analytics"}}}}
	d.effect == "allow"
	d.rule == "data-export-internal"
}

test_external_export_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "api.example.com", "path": "/v1/exports",
		"body": {"destination": {"uri": "s3://partner-share", "credentials": "AKIA..."}}}}
	d.effect == "approve"
	d.rule == "data-export"
	d.credential == "export-api"
	d.reuse == "once"
	d.redact == ["request.body.destination.credentials"]
	d.approvers.groups == ["data-owners"]
}

test_export_without_body_needs_approval if {
	d := decision with input as {"request": {"method": "POST", "host": "api.example.com", "path": "/v1/reports/export"}}
	d.rule == "data-export"
}

test_upload_to_storage_needs_approval if {
	d := decision with input as {"request": {"method": "PUT", "host": "partner-share.s3.amazonaws.com", "path": "/dump.csv"}}
	d.effect == "approve"
	d.rule == "data-export-storage"
	d.credential == "s3-upload"
}

test_download_from_storage_is_not_an_export if {
	not decision with input as {"request": {"method": "GET", "host": "partner-share.s3.amazonaws.com", "path": "/dump.csv"}}
}

test_blocked_host_is_denied if {
	d := decision with input as {"request": {"method": "POST", "host": "pastebin.com", "path": "/api/api_post.php"}}
	d.effect == "deny"
	d.rule == "data-export-blocked"
}

"""What tests/tests/e2e/aws_sigv4.rs asks of AWS (moto in server mode), with boto3 and
botocore: an implementation of AWS's side that is not the approval service's.

    moto_tool.py setup URL            accounts, roles, bucket; turns moto's IAM checks on;
                                      prints {"service": {...keys}, "auditor": {...keys}}
    moto_tool.py get-object URL KEYS BUCKET KEY        prints the object's bytes (hex)
    moto_tool.py attached URL KEYS ROLE                prints the role's attached policy ARNs
    moto_tool.py sessions URL                          prints moto's assumed-role sessions
    moto_tool.py verify URL SESSION_KEY_ID METHOD REQUEST_URL HEADERS_JSON BODY_HEX
        recomputes the SigV4 signature of the request with botocore's S3 signer and the
        session's secret, the payload hash taken from BODY (what S3 checks), and prints
        {"signature": ..., "payload_sha256": ...}

KEYS is "access_key_id:secret". Setup runs with moto's IAM checks off (the default),
then turns them on: from then on moto refuses unsigned requests, unknown keys, bad
signatures and actions the caller's policies do not allow.
"""

import hashlib
import json
import sys
import urllib.request

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "exports"


def client(url, service, keys=None):
    key_id, secret = (keys or "test:test").split(":", 1)
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def user_with_keys(iam, name, policy):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": k["AccessKeyId"], "secret": k["SecretAccessKey"],
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}"}


def allow(action, resource="*"):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def setup(url):
    iam = client(url, "iam")
    service = user_with_keys(iam, "airlock-service", allow("sts:AssumeRole"))
    auditor = user_with_keys(iam, "auditor", allow("*"))
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": service["arn"]}, "Action": "sts:AssumeRole"}]}
    # Broad role policies on purpose: what narrows a session to one action is its
    # session policy, which the test reads back.
    for role, policy in [("airlock-s3-export", allow("s3:*", [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"])),
                         ("airlock-iam-change", allow("iam:*"))]:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=role, PolicyName="broad", PolicyDocument=json.dumps(policy))
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_policy(PolicyName="exports-read", PolicyDocument=json.dumps(allow("s3:GetObject")))
    client(url, "s3").create_bucket(Bucket=BUCKET)
    req = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"content-type": "text/plain"})
    urllib.request.urlopen(req, timeout=10).read()
    print(json.dumps({"service": service, "auditor": auditor}))


def sessions(url):
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as r:
        data = json.load(r)
    return data.get("sts", {}).get("AssumedRole", [])


def verify(url, key_id, method, request_url, headers_json, body_hex):
    found = [s for s in sessions(url) if s.get("access_key_id") == key_id]
    if len(found) != 1:
        sys.exit(f"no single session with access key {key_id}")
    s = found[0]
    body = bytes.fromhex(body_hex)
    payload = hashlib.sha256(body).hexdigest()
    headers = json.loads(headers_json)
    auth = headers.pop("authorization")
    signed = auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    # What the server sees: the headers as sent, but the payload hash of the body as sent.
    kept = {k: v for k, v in headers.items() if k in signed}
    kept["x-amz-content-sha256"] = payload
    req = AWSRequest(method=method, url=request_url, data=body, headers=kept)
    req.context["timestamp"] = kept["x-amz-date"]
    signer = S3SigV4Auth(Credentials(s["access_key_id"], s["secret_access_key"], s["session_token"]), "s3", REGION)
    canonical = signer.canonical_request(req)
    signature = signer.signature(signer.string_to_sign(req, canonical), req)
    print(json.dumps({"signature": signature, "payload_sha256": payload}))


def main():
    cmd, url, *rest = sys.argv[1:]
    if cmd == "setup":
        setup(url)
    elif cmd == "get-object":
        keys, bucket, key = rest
        print(client(url, "s3", keys).get_object(Bucket=bucket, Key=key)["Body"].read().hex())
    elif cmd == "attached":
        keys, role = rest
        got = client(url, "iam", keys).list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        print(json.dumps([p["PolicyArn"] for p in got]))
    elif cmd == "sessions":
        print(json.dumps([{k: s.get(k) for k in ("session_name", "role_arn", "policy", "access_key_id", "expiration",
                                                 "secret_access_key", "session_token")}
                          for s in sessions(url)], default=str))
    elif cmd == "verify":
        verify(url, *rest)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

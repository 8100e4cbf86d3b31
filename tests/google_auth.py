#!/usr/bin/env python3
"""Gets AMAPI tokens from the simulator with Google's own Python auth library (google-auth).

A second opinion on the simulator's Google endpoints: each external_account configuration given
is loaded as Google's libraries load one (STS token exchange, then IAM Credentials when it
impersonates a service account), and Application Default Credentials are found as on GKE (no
file: the metadata server at GCE_METADATA_HOST / GCE_METADATA_IP). Each token is then used for
one devices.get. Run by tests/cluster/credentials.rs with the venv that hack/discovery creates.
Tokens are never printed.

Exit status: 0 when every credential worked, 1 otherwise.
"""

import argparse
import os
import sys
import tempfile

import google.auth
from google.auth import identity_pool
from google.auth.transport.requests import AuthorizedSession, Request

SCOPE = "https://www.googleapis.com/auth/androidmanagement"


def try_credentials(label, credentials, url):
    credentials.refresh(Request())
    response = AuthorizedSession(credentials).get(url)
    print(f"{label}: devices.get answered {response.status_code}")
    return response.status_code == 200


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="AMAPI root URL, like http://127.0.0.1:8089/")
    parser.add_argument("--device", required=True, help="enterprises/E/devices/D")
    parser.add_argument("--external-account", action="append", default=[], help="an external_account file")
    args = parser.parse_args()
    url = f"{args.base_url}v1/{args.device}"
    ok = True

    for path in args.external_account:
        # identity_pool directly: load_credentials_from_file would also ask Cloud Resource
        # Manager for the project, which the simulator does not serve.
        credentials = identity_pool.Credentials.from_file(path, scopes=[SCOPE])
        email = getattr(credentials, "service_account_email", None)
        label = f"external_account impersonating {email}" if email else "external_account"
        ok &= try_credentials(label, credentials, url)

    # No gcloud user credentials may stand in for the metadata server.
    with tempfile.TemporaryDirectory() as empty:
        os.environ["CLOUDSDK_CONFIG"] = empty
        credentials, _ = google.auth.default(scopes=[SCOPE])
    if type(credentials).__module__ != "google.auth.compute_engine.credentials":
        print(f"default() found {type(credentials).__module__}, not the metadata server")
        return 1
    credentials.refresh(Request())
    ok &= try_credentials(
        f"default (metadata server) {credentials.service_account_email}", credentials, url
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

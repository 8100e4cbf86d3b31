#!/usr/bin/env python3
"""Resets a passcode through the AMAPI simulator with Google's own Python client.

If google-api-python-client (with its bundled discovery document) and google-auth can talk to the
simulator, the simulator speaks AMAPI and Google OAuth as Google's clients expect. Run by
tests/simulator.rs with the venv that hack/discovery creates. The new passcode is read from stdin,
never from the command line; nothing printed contains it (the Operation echoes it, so the
Operation itself is never printed).

Exit status: 0 when the reset succeeded, 1 when it failed or timed out, 2 on usage errors.
"""

import argparse
import sys
import time

from google.oauth2 import service_account
from googleapiclient.discovery import build

SCOPE = "https://www.googleapis.com/auth/androidmanagement"


def outcome(operation):
    """AMAPI's precedence: metadata.errorCode, then error (code 1 = cancelled), then success."""
    code = operation.get("metadata", {}).get("errorCode")
    if code and code != "COMMAND_ERROR_CODE_UNSPECIFIED":
        return f"FAILED errorCode={code}"
    error = operation.get("error")
    if error:
        return "CANCELLED" if error.get("code") == 1 else f"FAILED error.code={error.get('code')}"
    return "SUCCEEDED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", required=True, help="service-account key file")
    parser.add_argument("--base-url", required=True, help="AMAPI root URL, like http://127.0.0.1:8089/")
    parser.add_argument("--device", required=True, help="enterprises/E/devices/D")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the device")
    args = parser.parse_args()
    passcode = sys.stdin.read().rstrip("\n")

    credentials = service_account.Credentials.from_service_account_file(args.credentials, scopes=[SCOPE])
    amapi = build(
        "androidmanagement",
        "v1",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": args.base_url},
    )
    devices = amapi.enterprises().devices()

    device = devices.get(name=args.device).execute()
    print(f"device {device['name']}: {device.get('managementMode')} API level {device.get('apiLevel')}")

    command = {"type": "RESET_PASSWORD", "resetPasswordFlags": ["LOCK_NOW"], "duration": "600s"}
    if passcode:
        command["newPassword"] = passcode
    operation = devices.issueCommand(name=args.device, body=command).execute()
    name = operation["name"]
    print(f"issued {name}")

    deadline = time.monotonic() + args.timeout
    while not operation.get("done"):
        if time.monotonic() > deadline:
            print(f"{name}: still pending after {args.timeout}s")
            return 1
        time.sleep(0.05)
        operation = devices.operations().get(name=name).execute()
    result = outcome(operation)
    print(f"{name}: {result}")
    return 0 if result == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())

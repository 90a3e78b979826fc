#!/usr/bin/env python3
"""Checks Deploy/container/compose.yaml without a container engine (none runs on the machines
this was written on), as the test suite does:

    python3 Deploy/container/check_compose.py Deploy/container/compose.yaml --binary PATH

- it parses, and its services, secrets and volumes refer to one another correctly;
- every secret is a file under ./secrets (never inline), and services run as a non-root user;
- every Oversight service's command is a subcommand and options the binary takes (its --help).
Exits 1 with what was wrong and where.
"""
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kubernetes"))
from validate import option_errors  # noqa: E402


def main():
    arguments = sys.argv[1:]
    if len(arguments) != 3 or arguments[1] != "--binary":
        print("usage: check_compose.py COMPOSE_FILE --binary PATH", file=sys.stderr)
        sys.exit(2)
    path, binary = arguments[0], arguments[2]
    with open(path) as f:
        compose = yaml.safe_load(f)
    errors = []
    services = compose.get("services") or {}
    secrets = compose.get("secrets") or {}
    volumes = compose.get("volumes") or {}
    if not services:
        errors.append("no services")
    for name, secret in secrets.items():
        file = (secret or {}).get("file", "")
        if not file.startswith("./secrets/"):
            errors.append(f"secret {name}: not a file under ./secrets ({secret})")
    for name, service in services.items():
        where = f"service {name}"
        if not service.get("image"):
            errors.append(f"{where}: no image")
        for dependency in (service.get("depends_on") or {}):
            if dependency not in services:
                errors.append(f"{where}: depends on {dependency}, which is not a service")
        for secret in service.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret.get("source")
            if source not in secrets:
                errors.append(f"{where}: uses secret {source}, which is not declared")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")) and source not in volumes:
                errors.append(f"{where}: uses volume {source}, which is not declared")
        if service.get("image", "").startswith("oversight:"):
            user = str(service.get("user", ""))
            if not user or user.split(":")[0] in ("0", "root"):
                errors.append(f"{where}: runs as root")
            errors += option_errors(binary, service.get("command") or [], where)
    if errors:
        for error in errors:
            print(f"check_compose: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"check_compose: {len(services)} services, {len(secrets)} secrets, {len(volumes)} volumes consistent")


if __name__ == "__main__":
    main()

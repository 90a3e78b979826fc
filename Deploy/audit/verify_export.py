#!/usr/bin/env python3
"""Checks an `oversight audit export` directory without Oversight and without its database.

Written from Schemas/seal.md alone: the Python standard library and one Ed25519 implementation
(`pip install cryptography`). Exit 0: every record, result and leaf is what the trusted signers
sealed. Exit 1: something does not check (each problem is printed). Exit 2: bad usage.

    python3 verify_export.py DIR --trust SHA256:<32 hex digits> [--trust ...]
"""
import argparse, hashlib, itertools, re, struct, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEX32 = re.compile(r"[0-9a-f]{64}\Z")
SEQ = re.compile(r"[1-9][0-9]*\Z")
COUNT = re.compile(r"(0|[1-9][0-9]*)\Z")


class Failed(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def lines(path):
    """The file's lines: every one ends with LF, none is empty."""
    with open(path, "rb") as f:
        data = f.read()
    if data == b"":
        return []
    if not data.endswith(b"\n"):
        raise Failed(f"{path}: does not end with a line feed")
    out = data[:-1].split(b"\n")
    if any(line == b"" for line in out):
        raise Failed(f"{path}: holds an empty line")
    return out


def stream(path):
    """The same lines as lines(), read one at a time (a million-record export is gigabytes)."""
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                raise Failed(f"{path}: does not end with a line feed")
            if line == b"\n":
                raise Failed(f"{path}: holds an empty line")
            yield line[:-1]


def hex32(text, what):
    if not HEX32.match(text):
        raise Failed(f"{what}: not 64 lower-case hex digits: {text!r}")
    return bytes.fromhex(text)


def lp(*parts):
    return b"".join(struct.pack(">Q", len(p)) + p for p in parts)


def merkle_root(leaves):
    """RFC 6962 section 2.1 over the leaf hashes; SHA-256 of nothing for no leaves."""
    if not leaves:
        return sha256(b"")
    level = leaves
    while len(level) > 1:
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def fingerprint(key):
    return "SHA256:" + sha256(key)[:16].hex()


def verify(directory, trusted):
    d = directory.rstrip("/") + "/"
    head = [l.decode("utf-8").split("\t") for l in lines(d + "batch.txt")]
    keys = [h[0] for h in head]
    if any(len(h) != 2 for h in head) or keys[:4] != ["format", "batch_id", "organisation", "criteria_sha256"] \
            or any(k != "pack_sha256" for k in keys[4:]) or len(keys) < 5:
        raise Failed("batch.txt: not the lines format, batch_id, organisation, criteria_sha256, pack_sha256...")
    if head[0][1] != "oversight-audit-export/1":
        raise Failed(f"batch.txt: unknown format {head[0][1]!r}")
    batch_id, organisation = head[1][1], head[2][1]
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", batch_id):
        raise Failed(f"batch.txt: batch_id is not a lower-case UUID: {batch_id!r}")
    criteria = hex32(head[3][1], "batch.txt criteria_sha256")
    packs = [hex32(h[1], "batch.txt pack_sha256") for h in head[4:]]
    if criteria != (packs[0] if len(packs) == 1 else sha256(b"".join(packs))):
        raise Failed("batch.txt: criteria_sha256 is not the hash of the packs' hashes")

    missing = object()
    streams = itertools.zip_longest(stream(d + "records.jsonl"), stream(d + "results.jsonl"), stream(d + "assessments.tsv"),
                                    fillvalue=missing)
    assessed, previous = [], 0
    for n, (record, result, row) in enumerate(streams, 1):
        if missing in (record, result, row):
            raise Failed(f"line {n}: records.jsonl, results.jsonl and assessments.tsv do not hold as many lines")
        fields = row.decode("ascii").split("\t")
        if len(fields) != 3 or not SEQ.match(fields[0]) or int(fields[0]) <= previous:
            raise Failed(f"assessments.tsv line {n}: not 'seq input_sha256 row_sha256' in ascending seq order")
        seq, previous = int(fields[0]), int(fields[0])
        input_sha = hex32(fields[1], f"assessments.tsv line {n}")
        row_sha = hex32(fields[2], f"assessments.tsv line {n}")
        if sha256(record) != input_sha:
            raise Failed(f"seq {seq}: records.jsonl line {n} does not give its input_sha256")
        if sha256(lp(batch_id.encode(), str(seq).encode(), input_sha, criteria, result)) != row_sha:
            raise Failed(f"seq {seq}: results.jsonl line {n} does not give its row_sha256")
        assessed.append((seq, row_sha))

    seal_rows = [l.decode("utf-8").split("\t") for l in lines(d + "seals.tsv")]
    if not seal_rows:
        raise Failed("seals.tsv: no seal")
    used_keys, sealed = [], {}
    for n, s in enumerate(seal_rows, 1):
        if len(s) != 11 or s[0] != str(n) or s[1] not in ("1", "2"):
            raise Failed(f"seals.tsv line {n}: not seal {n} with its 11 fields")
        version, count = int(s[1]), s[3]
        if not COUNT.match(count):
            raise Failed(f"seals.tsv line {n}: assessments is not a count")
        root, key = hex32(s[8], f"seal {n} merkle_root"), hex32(s[9], f"seal {n} signing_key")
        if not re.fullmatch(r"[0-9a-f]{128}", s[10]):
            raise Failed(f"seal {n}: the signature is not 128 hex digits")
        signature = bytes.fromhex(s[10])
        if version == 2:
            if not all(COUNT.match(x) for x in (s[4], s[5], s[6])):
                raise Failed(f"seal {n}: accepted, dead_lettered and rejected must be counts")
            dead = [] if s[7] == "-" else s[7].split(",")
            if not all(SEQ.match(x) for x in dead) or [int(x) for x in dead] != sorted(set(int(x) for x in dead)):
                raise Failed(f"seal {n}: dead_letter_seqs are not ascending seqs")
            dead = [int(x) for x in dead]
            if int(s[4]) != int(count) + int(s[5]) or len(dead) != int(s[5]):
                raise Failed(f"seal {n}: accepted is not assessed + dead-lettered, or the list of dead letters is not that long")
            dead_sha = sha256(b"".join(struct.pack(">Q", x) for x in dead))
            statement = lp(b"oversight-seal/2", batch_id.encode(), organisation.encode(), criteria, s[0].encode(), s[2].encode(),
                           s[4].encode(), count.encode(), s[5].encode(), s[6].encode(), dead_sha, root)
        else:
            if s[2] != "-" or s[4:8] != ["-", "-", "-", "-"]:
                raise Failed(f"seal {n}: a version 1 seal signs no time or counts; they must be '-'")
            dead, statement = [], lp(b"oversight-seal/1", batch_id.encode(), organisation.encode(), criteria, count.encode(), root)
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(signature, statement)
        except InvalidSignature:
            raise Failed(f"seal {n}: the signature does not verify")
        if fingerprint(key) not in trusted:
            raise Failed(f"seal {n}: signed by {fingerprint(key)}, which is not a trusted key")
        if key not in used_keys:
            used_keys.append(key)
        leaves, previous = [], 0
        for m, line in enumerate(lines(d + f"seal-{n}.leaves"), 1):
            f = line.decode("ascii").split("\t")
            if len(f) != 2 or not SEQ.match(f[0]) or int(f[0]) <= previous:
                raise Failed(f"seal-{n}.leaves line {m}: not 'seq row_sha256' in ascending seq order")
            previous = int(f[0])
            leaves.append((int(f[0]), hex32(f[1], f"seal-{n}.leaves line {m}")))
        if len(leaves) != int(count) or merkle_root([sha256(b"\x00" + struct.pack(">Q", q) + h) for q, h in leaves]) != root:
            raise Failed(f"seal {n}: its leaves do not give its signed Merkle root")
        sealed[n] = (leaves, dead, int(s[4]) if version == 2 else None)

    newest_leaves, dead, accepted = sealed[len(seal_rows)]
    if newest_leaves != assessed:
        raise Failed("the newest seal's leaves are not the exported assessments")
    if accepted is not None:
        covered = set(q for q, _ in newest_leaves)
        if covered & set(dead) or covered | set(dead) != set(range(1, accepted + 1)):
            raise Failed("the newest seal does not cover every accepted job once, by an assessment or a dead letter")
    newest = dict(newest_leaves)
    for n, (leaves, _, _) in sealed.items():
        if any(newest.get(q) != h for q, h in leaves):
            raise Failed(f"seal {n} covers rows that the newest seal does not cover unchanged")

    key_rows = [l.decode("ascii").split("\t") for l in lines(d + "keys.tsv")]
    listed = [hex32(k[1], "keys.tsv") if len(k) == 2 else b"" for k in key_rows]
    if listed != used_keys or any(k[0] != fingerprint(key) for k, key in zip(key_rows, listed)):
        raise Failed("keys.tsv: not the seals' signing keys, in order of first use, with their fingerprints")
    return len(assessed), len(seal_rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--trust", action="append", required=True, metavar="FINGERPRINT",
                        help="a signing key's fingerprint the organisation published (SHA256:...); repeat for each")
    args = parser.parse_args()
    try:
        rows, seals = verify(args.directory, set(args.trust))
    except (Failed, OSError, UnicodeDecodeError, ValueError) as e:
        print(f"FAILED: {e}")
        return 1
    print(f"verified: {rows} assessments; {seals} seal(s) signed by trusted keys; every hash, leaf and root matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())

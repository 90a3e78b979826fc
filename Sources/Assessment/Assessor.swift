import Crypto

/// What one rule said about one record.
public struct Finding: Sendable, Hashable {
    public enum Outcome: String, Sendable { case fired, needsInformation = "needs_information" }
    public let ruleID: String
    public let outcome: Outcome
    public let severity: Verdict
    public let points: Int
    public let title: String
    public let citation: String
    /// For `needs_information`: the absent fields that decide the rule, sorted.
    public let missing: [String]
}

/// The assessment of one record against one pack.
public struct AssessmentResult: Sendable, Hashable {
    public let verdict: Verdict
    public let score: Int
    public let applies: Applicability
    public let findings: [Finding]
    public let packID: String
    public let packVersion: String

    /// Canonical JSON of the result: the `result` column, and part of the row hash.
    public var canonicalJSON: JSONValue {
        .object([
            ("applies", .string(applies.rawValue)),
            ("findings", .array(findings.map { f in
                .object([
                    ("citation", .string(f.citation)),
                    ("missing", .array(f.missing.map(JSONValue.string))),
                    ("outcome", .string(f.outcome.rawValue)),
                    ("points", .number(Double(f.points))),
                    ("rule", .string(f.ruleID)),
                    ("severity", .string(f.severity.rawValue)),
                    ("title", .string(f.title)),
                ])
            })),
            ("pack", .object([("id", .string(packID)), ("version", .string(packVersion))])),
            ("score", .number(Double(score))),
            ("verdict", .string(verdict.rawValue)),
        ])
    }
}

extension CriteriaPack {
    /// Scores one validated record. Pure and deterministic.
    public func assess(_ record: JSONValue) -> AssessmentResult {
        var findings: [Finding] = []
        var worstFired: Verdict = .minimal
        var worstUnknown: Verdict? = nil
        var points = 0.0
        var largestUnknown = 0
        for rule in rules {
            var missing: [String] = []
            switch rule.condition.evaluate(record, missing: &missing) {
            case .no: continue
            case .yes:
                worstFired = min(worstFired, rule.severity)
                points += Double(rule.points)
                findings.append(Finding(ruleID: rule.id, outcome: .fired, severity: rule.severity, points: rule.points,
                                        title: rule.title, citation: rule.citation, missing: []))
            case .unknown:
                if rule.blocksVerdict && blockingSeverities.contains(rule.severity) {
                    worstUnknown = worstUnknown.map { min($0, rule.severity) } ?? rule.severity
                }
                largestUnknown = max(largestUnknown, rule.points)
                findings.append(Finding(ruleID: rule.id, outcome: .needsInformation, severity: rule.severity, points: rule.points,
                                        title: rule.title, citation: rule.citation, missing: Array(Set(missing)).sorted()))
            }
        }
        var verdict = worstFired
        if let worstUnknown, worstUnknown < worstFired { verdict = .insufficientInformation }
        points += unknownWeight * Double(largestUnknown)
        let applies: Applicability
        if let country = record["operator"]?["country"]?.stringValue {
            applies = bindingIn.contains(country.uppercased()) ? .binding : .benchmark
        } else {
            applies = bindingIn.isEmpty ? .benchmark : .undetermined
        }
        return AssessmentResult(verdict: verdict, score: min(100, Int((points).rounded(.toNearestOrAwayFromZero))),
                                applies: applies, findings: findings, packID: id, packVersion: version)
    }
}

/// SHA-256 helpers for the audit trail.
public enum AuditHash {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

    /// Hash of a record's canonical JSON: the same facts give the same hash whatever the spacing
    /// or key order of the submitted text.
    public static func input(_ record: JSONValue) -> [UInt8] { sha256(record.canonicalBytes) }

    /// Hash of an assessment row: batch, sequence, input hash, pack hash and canonical result,
    /// length-prefixed so that no two rows can collide by shifting bytes between fields.
    public static func row(batchID: String, seq: Int64, inputSHA256: [UInt8], packSHA256: [UInt8], result: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        for part in [Array(batchID.utf8), Array(String(seq).utf8), inputSHA256, packSHA256, result] {
            var length = UInt64(part.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: part)
        }
        return Array(hasher.finalize())
    }
}

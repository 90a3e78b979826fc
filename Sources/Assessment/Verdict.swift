/// The outcome of an assessment, most severe first. An assessment gives two: the settled verdict
/// and the worst case (engine 3's `insufficient_information` is no verdict any more; stored rows
/// of engine 3 keep it).
public enum Verdict: String, Sendable, CaseIterable, Comparable {
    case prohibited
    case highRisk = "high_risk"
    case elevated
    case limited
    case minimal

    /// Rank of the severities a rule can carry; lower is more severe.
    var rank: Int {
        switch self {
        case .prohibited: 0
        case .highRisk: 1
        case .elevated: 2
        case .limited: 3
        case .minimal: 4
        }
    }

    public static func < (lhs: Verdict, rhs: Verdict) -> Bool { lhs.rank < rhs.rank }
}

/// Three-valued logic: absent facts are unknown, never false.
public enum Truth: Sendable, Hashable {
    case yes, no, unknown
}

/// Whether a pack binds the deployment in law or serves as a benchmark.
public enum Applicability: String, Sendable, Hashable {
    case binding
    case benchmark
    /// The operator's country is unknown, so it cannot be said whether the pack binds.
    case undetermined
}

extension Applicability {
    /// A whole result's: binding if any pack binds; undetermined if that depends on an unknown
    /// country; otherwise a benchmark.
    public static func overall(_ packs: [Applicability]) -> Applicability {
        packs.contains(.binding) ? .binding : packs.contains(.undetermined) ? .undetermined : .benchmark
    }
}

extension Verdict {
    /// A settled verdict and its worst case as one phrase: `high_risk`, or
    /// `high_risk — could be prohibited` while open facts could make it worse.
    public static func range(_ settled: Verdict, _ worstCase: Verdict) -> String {
        settled == worstCase ? settled.rawValue : "\(settled.rawValue) — could be \(worstCase.rawValue)"
    }
}

/// The help text of every metric made through swift-metrics (`# HELP` in the exposition). The
/// coordinator's, exported from its loop's snapshots, carry theirs where they are made.
public enum MetricHelp {
    public static let texts: [String: String] = [
        "oversight_worker_bundles_total": "Bundles of jobs this worker scored.",
        "oversight_worker_records_scored_total": "Records this worker scored (each job of a bundle, failed or not).",
        "oversight_worker_scoring_seconds": "Seconds this worker spent scoring one bundle.",
        "oversight_worker_commit_seconds": "Seconds one bundle's results took to commit to PostgreSQL.",
        "oversight_worker_unacknowledged_results": "Jobs this worker holds that its coordinator has not yet heard done (received, scoring, or committed and not yet reported).",
        "oversight_worker_reconnects_total": "Times this worker found its coordinator silent and connected again.",
        "oversight_seal_seconds": "Seconds one batch's seal took (the Merkle root of its assessments, signed).",
        "oversight_last_seal_timestamp_seconds": "When this coordinator last sealed a batch (Unix time).",
        "oversight_job_seconds": "Seconds from a job's lease (sent to a worker) to the DONE that reported it committed, as the coordinator saw them.",
        "oversight_bundle_seconds": "Seconds from the lease of a DONE's slowest job to that DONE: a bundle's time at its worker, as the coordinator saw it.",
        "oversight_store_reconnects_total": "Times the coordinator's store thread connected to PostgreSQL again after losing its connection.",
    ]
}

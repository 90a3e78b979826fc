import Foundation
import Testing
import ChildProcess
import TestSupport

/// Deploy/kubernetes and Deploy/container, checked offline (there is no cluster and no container
/// engine on these machines): the overlays build with `kubectl kustomize`, built-in kinds pass
/// `kubernetes-validate --strict`, KEDA's against a schema written from its documentation, every
/// Secret named exists, and every container's arguments are options the binary takes; the
/// Containerfile passes hadolint; the compose file is consistent. Each check is shown to fail on a
/// broken copy.
@Suite(.serialized) struct DeploymentTests {
    static let repository = FileManager.default.currentDirectoryPath

    static func shell(_ command: String) throws -> (status: Int32, output: String) {
        try ChildProcess.run(["/bin/sh", "-c", command])
    }

    /// A copy of Deploy/kubernetes with the example overlay's secrets made as an operator would.
    static func kubernetesCopy() throws -> String {
        let directory = NSTemporaryDirectory() + "oversight-k8s-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: repository + "/Deploy/kubernetes", toPath: directory)
        let secrets = directory + "/overlays/example/secrets"
        for name in ["coordinator", "worker", "client"] {
            let made = try OversightBinary.runSplit(["keys", "generate", name, "--directory", secrets])
            #expect(made.status == 0, "\(made.stderr)")
        }
        for (file, text) in [("coordinator-url", "postgresql://oversight_coordinator@postgresql.oversight.svc/oversight?sslmode=require"),
                             ("worker-url", "postgresql://oversight_worker@postgresql.oversight.svc/oversight?sslmode=require"),
                             ("coordinator-pgpass", "postgresql.oversight.svc:5432:oversight:oversight_coordinator:example"),
                             ("worker-pgpass", "postgresql.oversight.svc:5432:oversight:oversight_worker:example")] {
            try (text + "\n").write(toFile: secrets + "/" + file, atomically: true, encoding: .utf8)
        }
        return directory
    }

    func validate(_ overlay: String) throws -> (status: Int32, output: String) {
        try Self.shell("python3 '\(overlay)/../../validate.py' '\(overlay)' --binary '\(OversightBinary.path)' 2>&1")
    }

    @Test func theKubernetesManifestsValidate() throws {
        let copy = try Self.kubernetesCopy()
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let example = try validate(copy + "/overlays/example")
        #expect(example.status == 0, "\(example.output)")
        #expect(example.output.contains("StatefulSet") && example.output.contains("1 KEDA objects"), "\(example.output)")
        // The PostgreSQL trigger instead of Prometheus, as a component of another overlay.
        try FileManager.default.createDirectory(atPath: copy + "/overlays/pg", withIntermediateDirectories: true)
        try """
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources: [../example]
            components: [../../components/postgresql-trigger]
            generatorOptions: {disableNameSuffixHash: true}
            secretGenerator:
              - {name: oversight-scaler, namespace: oversight, literals: [password=example]}
            """.write(toFile: copy + "/overlays/pg/kustomization.yaml", atomically: true, encoding: .utf8)
        let postgres = try validate(copy + "/overlays/pg")
        #expect(postgres.status == 0 && postgres.output.contains("TriggerAuthentication"), "\(postgres.output)")
        let built = try Self.shell("kubectl kustomize '\(copy)/overlays/pg'")
        #expect(built.output.contains("query: SELECT oversight.pending_jobs()") && !built.output.contains("type: prometheus"), "\(built.output)")

        // Each check fails on a broken copy.
        func broken(_ file: String, _ from: String, _ to: String, says expected: String) throws {
            let path = copy + "/" + file
            let original = try String(contentsOfFile: path, encoding: .utf8)
            #expect(original.contains(from), "\(file) has \(from)")
            try original.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? original.write(toFile: path, atomically: true, encoding: .utf8) }
            let result = try validate(copy + "/overlays/example")
            #expect(result.status != 0 && result.output.contains(expected), "\(file): \(from) → \(to): \(result.output)")
        }
        try broken("base/worker-deployment.yaml", "  replicas: 2\n", "  replicas: 2\n  replicaz: 3\n", says: "kubernetes-validate")
        try broken("base/worker-scaledobject.yaml", "threshold: \"2000\"", "threshold: lots", says: "ScaledObject oversight-worker")
        try broken("base/worker-deployment.yaml", "key: worker-url", "key: worker-uri", says: "worker-uri")
        try broken("base/worker-deployment.yaml", "--log-format=json", "--log-fromat=json", says: "no option --log-fromat")
    }

    @Test func theContainerfileLintsAndTheComposeFileIsConsistent() throws {
        let containerfile = Self.repository + "/Deploy/container/Containerfile"
        let lint = try Self.shell("hadolint '\(containerfile)' 2>&1")
        #expect(lint.status == 0, "\(lint.output)")
        let text = try String(contentsOfFile: containerfile, encoding: .utf8)
        #expect(text.contains("USER 10001") && text.contains("FROM swift:") && text.contains("\"--help\"]"), "non-root, official Swift image, --help smoke test")
        let badFile = NSTemporaryDirectory() + "oversight-bad-\(UUID().uuidString).containerfile"
        try text.replacingOccurrences(of: "FROM debian:bookworm-slim AS runtime", with: "FROM debian AS runtime").write(toFile: badFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: badFile) }
        let bad = try Self.shell("hadolint '\(badFile)' 2>&1")
        #expect(bad.status != 0 && bad.output.contains("DL3006"), "an untagged base image is refused: \(bad.output)")

        let compose = Self.repository + "/Deploy/container/compose.yaml"
        let check = try Self.shell("python3 '\(Self.repository)/Deploy/container/check_compose.py' '\(compose)' --binary '\(OversightBinary.path)' 2>&1")
        #expect(check.status == 0 && check.output.contains("4 services"), "\(check.output)")
        let brokenCompose = NSTemporaryDirectory() + "oversight-compose-\(UUID().uuidString).yaml"
        try String(contentsOfFile: compose, encoding: .utf8)
            .replacingOccurrences(of: "- coordinator.key\n    deploy:", with: "- coordinator.pub\n    deploy:")
            .replacingOccurrences(of: "--metrics=0.0.0.0:9464\n      - --log-format=json\n    secrets:\n      - pgpass\n      - worker", with: "--metrix=0.0.0.0:9464\n      - --log-format=json\n    secrets:\n      - pgpass\n      - worker")
            .write(toFile: brokenCompose, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: brokenCompose) }
        let failing = try Self.shell("python3 '\(Self.repository)/Deploy/container/check_compose.py' '\(brokenCompose)' --binary '\(OversightBinary.path)' 2>&1")
        #expect(failing.status != 0 && failing.output.contains("coordinator.pub") && failing.output.contains("--metrix"), "\(failing.output)")
    }
}

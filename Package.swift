// swift-tools-version: 6.1
import PackageDescription

// Every target: Swift 6 language mode, strict concurrency, explicit existentials.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "oversight",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "oversight", targets: ["OversightCLI"]),
    ],
    dependencies: [
        // CLI parsing with subcommands, validation and generated --help.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The logging API the Swift server ecosystem shares; libraries accept a Logger.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // SHA-256 for audit hashes (and Ed25519 for seals) from a vetted implementation.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // The read-only web console (`oversight serve`): an HTTP server on SwiftNIO, with TLS.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // bcrypt for the console's users file (HTTP basic auth against stored hashes).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        // Named because the console uses their types directly (header names, TLS certificates);
        // hummingbird already depends on both.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Metrics for operators (`--metrics`): the shared metrics API, and its Prometheus backend
        // (which needs only swift-atomics besides); served over the HTTP server above.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: pkg-config finds the system libraries.
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),

        // Thin, safe Swift faces of the C libraries.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: strict),
        .target(name: "LibPQ", dependencies: ["CLibPQ"], swiftSettings: strict),

        // The domain and the protocol: pure, no I/O.
        .target(name: "Assessment",
                dependencies: [.product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict,
                plugins: ["EmbedSchemasPlugin"]),
        // Shapes shared below both the wire and the store (a batch id).
        .target(name: "Identifiers", swiftSettings: strict),
        .target(name: "Wire", dependencies: ["Identifiers"], swiftSettings: strict),

        // PostgreSQL schema, bulk writers and queries.
        .target(name: "AuditStore",
                dependencies: ["LibPQ", "Assessment", "Identifiers", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict,
                plugins: ["EmbedSchemasPlugin"]),

        // Services.
        .target(name: "Coordinator",
                dependencies: ["ZeroMQ", "Wire", "Identifiers", "AuditStore", "Assessment", "Observability",
                               .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")],
                swiftSettings: strict),
        .target(name: "Worker",
                dependencies: ["ZeroMQ", "Wire", "Identifiers", "AuditStore", "Assessment", "Observability",
                               .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics")],
                swiftSettings: strict),

        // Child processes without Foundation's Process, whose exit detection never fires when a
        // grandchild (the postmaster that pg_ctl leaves running) inherits its descriptor.
        .target(name: "ChildProcess", swiftSettings: strict),
        // What operators and their supervisors watch a fleet through: JSON logs, systemd's
        // readiness, Prometheus metrics and health endpoints.
        .target(name: "Observability", dependencies: [.product(name: "Logging", package: "swift-log"),
                                                      .product(name: "Metrics", package: "swift-metrics"),
                                                      .product(name: "Prometheus", package: "swift-prometheus"),
                                                      .product(name: "Hummingbird", package: "hummingbird")],
                swiftSettings: strict),
        // Pure rendering of what analysts read (request drafts), from query results.
        .target(name: "Reporting", dependencies: ["Assessment"], swiftSettings: strict),

        // The read-only web console: pages and a JSON API over the reader views.
        .target(name: "Console",
                dependencies: ["AuditStore", "Assessment", "Identifiers", "Reporting",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "HummingbirdTLS", package: "hummingbird"),
                               .product(name: "HummingbirdCore", package: "hummingbird"),
                               .product(name: "HTTPTypes", package: "swift-http-types"),
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // The one command users run.
        .executableTarget(name: "OversightCLI",
                          dependencies: ["Coordinator", "Worker", "AuditStore", "Assessment", "Reporting", "Console", "Wire", "Identifiers", "ZeroMQ", "ChildProcess", "Observability",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus")],
                          swiftSettings: strict),

        // Build step: embeds Schemas/ (SQL migrations, JSON Schemas, built-in packs) into the
        // binary, so the program applies exactly the files in Schemas/ and nothing drifts.
        .executableTarget(name: "EmbedSchemas", swiftSettings: strict),
        .plugin(name: "EmbedSchemasPlugin", capability: .buildTool(), dependencies: ["EmbedSchemas"]),

        // Tests: pure units, real sockets, a real PostgreSQL, and the built binary as processes.
        .target(name: "TestSupport", dependencies: ["LibPQ", "ChildProcess"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "AssessmentTests", dependencies: ["Assessment", "TestSupport"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Assessment"], swiftSettings: strict),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Identifiers", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strict),
        .testTarget(name: "ObservabilityTests", dependencies: ["Observability", .product(name: "Logging", package: "swift-log"),
                                                              .product(name: "Metrics", package: "swift-metrics")], swiftSettings: strict),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator", "Worker", "Wire", "Identifiers", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StoreTests", dependencies: ["LibPQ", "AuditStore", "Assessment", "Identifiers", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["LibPQ", "Assessment", "TestSupport", "ZeroMQ", "Wire", "Identifiers"], swiftSettings: strict),
    ]
)

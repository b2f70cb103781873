// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "todo-pipeline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "todo", targets: ["Server"]),
        .executable(name: "todo-bench", targets: ["Bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // C libraries, each behind a system-library target. Only the wrapper modules import them.
        .systemLibrary(
            name: "CNATS",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        .systemLibrary(name: "CEpoll"),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // Blocking work on NIO thread pools that runs even when its task is cancelled.
        .target(name: "ThreadPoolSupport", dependencies: [.product(name: "NIOPosix", package: "swift-nio")]),

        // Thin Swift wrappers over the C clients.
        .target(
            name: "NATS",
            dependencies: [
                "CNATS", "ThreadPoolSupport",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ", "ThreadPoolSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),

        // Pure building blocks.
        .target(name: "Sharding"),
        .target(name: "Contracts", dependencies: ["Sharding"]),
        .target(
            name: "Migrations",
            dependencies: ["Postgres", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("SQL")]
        ),

        // What every service shares: health/readiness/metrics routes, logging, retry backoff.
        .target(
            name: "ServiceSupport",
            dependencies: [
                "NATS", "Contracts", "Sharding",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // What both HTTP services share: JSON errors, request context, access tokens, limits, CORS.
        .target(
            name: "HTTPAPI",
            dependencies: [
                "Contracts", "Postgres", "NATS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            resources: [.copy("OpenAPI")]
        ),

        // The four services, each a library so tests can assemble them.
        .target(
            name: "CommandAPI",
            dependencies: [
                "Contracts", "NATS", "Postgres", "Sharding", "ServiceSupport", "ThreadPoolSupport", "HTTPAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "DomainEngine",
            dependencies: [
                "Contracts", "NATS", "Sharding", "ServiceSupport",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "DataSink",
            dependencies: [
                "Contracts", "NATS", "Postgres", "Sharding", "ServiceSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Scheduler",
            dependencies: [
                "Contracts", "NATS", "Postgres", "Sharding", "ServiceSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Streamer",
            dependencies: [
                "Contracts", "NATS", "Postgres", "Sharding", "ServiceSupport", "HTTPAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("UI/Assets")]
        ),

        // One binary with a subcommand per service and for operations (`todo migrate`, ...).
        .executableTarget(
            name: "Server",
            dependencies: [
                "Migrations", "NATS", "Postgres", "Contracts", "ServiceSupport", "DomainEngine", "DataSink", "CommandAPI", "Streamer", "Scheduler",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Benchmarks: the wrappers next to plain C loops on the same libraries.
        .target(name: "RawNATSBench", dependencies: ["CNATS"]),
        .executableTarget(
            name: "Bench",
            dependencies: [
                "NATS", "Postgres", "RawNATSBench", "CEpoll", "Contracts", "Sharding", "Migrations", "ServiceSupport",
                "DomainEngine", "DataSink", "CommandAPI", "HTTPAPI", "Streamer", "Scheduler",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Fast tests, no servers.
        .testTarget(name: "ShardingTests", dependencies: ["Sharding"]),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "NATSTests", dependencies: ["NATS"]),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations"]),
        .testTarget(name: "DomainEngineTests", dependencies: ["DomainEngine", "Contracts", "Sharding"]),
        .testTarget(name: "DataSinkTests", dependencies: ["DataSink", "Contracts"]),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "Contracts", "NATS"]),
        .testTarget(
            name: "StreamerTests",
            dependencies: [
                "Streamer", "Contracts", "HTTPAPI",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "CommandAPITests",
            dependencies: [
                "CommandAPI", "HTTPAPI", "Contracts", "Sharding", "NATS",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Real nats-server and Postgres, started by `make test` (scripts/infra.sh).
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "NATS", "Postgres", "Migrations", "Sharding", "Contracts", "DomainEngine", "DataSink", "CommandAPI", "HTTPAPI", "ServiceSupport", "Streamer", "Scheduler",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

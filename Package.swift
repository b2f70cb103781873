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
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // C libraries, each behind a system-library target. Only the wrapper modules import them.
        .systemLibrary(
            name: "CNATS",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // Thin Swift wrappers over the C clients.
        .target(
            name: "NATS",
            dependencies: [
                "CNATS",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
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

        // The four services, each a library so tests can assemble them.
        .target(name: "CommandAPI", dependencies: ["Contracts", "NATS", "Postgres", "Sharding"]),
        .target(name: "DomainEngine", dependencies: ["Contracts", "NATS", "Sharding"]),
        .target(name: "DataSink", dependencies: ["Contracts", "NATS", "Postgres"]),
        .target(name: "Streamer", dependencies: ["Contracts", "NATS", "Postgres", "Sharding"]),

        // One binary with a subcommand per service and for operations (`todo migrate`, ...).
        .executableTarget(
            name: "Server",
            dependencies: [
                "Migrations", "NATS", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Benchmarks: the wrappers next to plain C loops on the same libraries.
        .target(name: "RawNATSBench", dependencies: ["CNATS"]),
        .executableTarget(
            name: "Bench",
            dependencies: [
                "NATS", "Postgres", "RawNATSBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Fast tests, no servers.
        .testTarget(name: "ShardingTests", dependencies: ["Sharding"]),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "NATSTests", dependencies: ["NATS"]),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations"]),
        // Real nats-server and Postgres, started by `make test` (scripts/infra.sh).
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["NATS", "Postgres", "Migrations", "Sharding"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

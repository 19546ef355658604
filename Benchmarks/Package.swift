// swift-tools-version:6.1
import PackageDescription

// Benchmark-only peer for `chorus bench wire`: the same Echo round trips through grpc-swift-2, so the
// numbers of both stacks come from one run on one machine. Kept out of the main package so its build
// does not pay for gRPC.
let package = Package(
    name: "ChorusBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
    ],
    targets: [
        .executableTarget(name: "grpc-echo-bench", dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
    ]
)

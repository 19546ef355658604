// swift-tools-version:6.0
import PackageDescription

// The layout follows DESIGN.md: wire code knows nothing of models, model code knows nothing of the wire.
let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
        .library(name: "ChorusWire", targets: ["ChorusWire"]),
        .library(name: "ChorusAPI", targets: ["ChorusAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        // Already in the graph through Hummingbird; named for the HTTP part types of the read deadlines.
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        // Already in the graph through Hummingbird; TLS for the listeners and the gateway's clients (ChorusTLS).
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        // Already in the graph through Hummingbird; the gateway's client of upstream OpenAI-compatible servers.
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        // YAML style files for DiffusionService (--styles FILE.yaml).
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // System libraries, found through pkg-config.
        .systemLibrary(name: "CProtobufC", path: "Sources/CSystem/CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CSystem/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CSystem/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CSystem/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CSystem/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),

        // protoc-c output for the wire's Frame (Proto/wire.proto): all ChorusWire knows of the contract.
        .target(name: "CWireFrame", dependencies: ["CProtobufC"], linkerSettings: [.linkedLibrary("protobuf-c")]),
        // protoc-c output for the services' messages, Proto/*.proto (committed; scripts/gen-proto regenerates both).
        .target(name: "ChorusProto", dependencies: ["CProtobufC"],
                linkerSettings: [.linkedLibrary("protobuf-c")]),

        // Numbers from outside (HTTP fields, wire requests, file headers) checked before they become
        // integers and sizes: a refused field is an error naming it, never a trap.
        .target(name: "ChorusInput"),

        // What each thread serves, written to standard error when a fatal signal ends the process.
        .target(name: "CCrashNote"),

        // Frames, streams, deadlines, status codes, server and client on SwiftNIO.
        .target(name: "ChorusWire", dependencies: [
            "CWireFrame", "ChorusInput", "CCrashNote",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // TLS for wire listeners and clients from PEM files, through ChorusWire's ConnectionSecurity seam: only
        // the executable links a TLS library, not the fuzzers or the wire's tests.
        .target(name: "ChorusTLS", dependencies: [
            "ChorusWire",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // protoc-c output for the ONNX subset the weight loader reads (Proto/onnx).
        .target(name: "CONNX", dependencies: ["CProtobufC"], linkerSettings: [.linkedLibrary("protobuf-c")]),
        // Register-blocked AVX2 kernels for the shapes sgemm handles badly; optimised in debug builds too,
        // where the tests run the vocoders through them.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O2"])]),
        // Tensor, kernels on OpenBLAS, weight loaders.
        .target(name: "ChorusTensor", dependencies: ["CBLAS", "CONNX", "CKernels", "ChorusInput"]),
        // libjpeg reports errors by longjmp-ing out of a handler, which Swift cannot catch: that happens in C.
        .target(name: "CJPEGShim", dependencies: ["CJPEG"]),
        // FFmpeg (Debian's libavformat-dev, libavcodec-dev, libswscale-dev, libswresample-dev) behind calls that read
        // a container from memory and answer codes, with FFmpeg's log routed to a sink instead of stderr.
        .target(name: "CVideoShim", linkerSettings: [
            .linkedLibrary("avformat"), .linkedLibrary("avcodec"), .linkedLibrary("swscale"),
            .linkedLibrary("swresample"), .linkedLibrary("avutil"),
        ]),
        // Images (PNG/JPEG, resize, CLIP preprocessing), audio (WAV, resampling, log-mel) and video (FFmpeg).
        .target(name: "ChorusMedia", dependencies: ["CPNG", "CJPEGShim", "CVideoShim"]),
        // Tokenizers built from tokenizer.json parts; VITS character vocabularies.
        .target(name: "ChorusText"),
        // Typed messages, handler protocols and clients generated from Proto/ (scripts/gen-proto).
        .target(name: "ChorusAPI", dependencies: ["ChorusProto", "ChorusWire", .product(name: "NIOCore", package: "swift-nio")]),
        // What every service process shares: flags, Health/Status/ListModels/Echo, concurrency limits.
        .target(name: "ChorusServiceKit", dependencies: [
            "ChorusAPI", "ChorusWire", "ChorusInput",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            // The health port (/livez, /readyz, /metrics) for orchestrators and Prometheus.
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], plugins: ["GitCommit"]),
        // Records the checkout's git commit at build time (`chorus --version`, Health).
        .plugin(name: "GitCommit", capability: .buildTool()),
        // Builds Playground/'s files into GatewayHTTP, which serves them at / (the browser playground).
        .plugin(name: "EmbedPlayground", capability: .buildTool()),

        // CLIP's two towers: VisionService embeds with them, LLaVA reuses the vision tower and Stable
        // Diffusion the text tower, so they live outside any one service.
        .target(name: "ChorusCLIP", dependencies: ["ChorusTensor", "ChorusMedia", "ChorusText"]),

        // LLaVA: the CLIP vision tower, its projector and a Llama decoder with chat templates and generation.
        // Language models: Llama (also LLaVA's language half) and the GGUF files llama.cpp serves.
        .target(name: "ChorusLLM", dependencies: ["ChorusTensor", "ChorusText"]),
        .target(name: "ChorusLLaVA", dependencies: ["ChorusTensor", "ChorusCLIP", "ChorusLLM", "ChorusText", "ChorusMedia"]),

        // Whisper: log-mel encoder, decoder with greedy, beam and sampled search, word timestamps.
        .target(name: "ChorusWhisper", dependencies: ["ChorusTensor", "ChorusMedia", "ChorusText", "CZlib"]),

        // VITS text-to-speech, with the Piper (ONNX + espeak-ng phonemes) and MMS-TTS loaders.
        .target(name: "ChorusVITS", dependencies: ["ChorusTensor", "ChorusMedia", "ChorusText"]),

        // Stable Diffusion 1.x/2.x: UNet, VAE, the diffusers schedulers and the denoise loop on CLIP's text tower.
        .target(name: "ChorusStableDiffusion", dependencies: ["ChorusTensor", "ChorusMedia", "ChorusText", "ChorusCLIP"]),

        // The terrain heightfield UNet (ONNX), one denoising step per image.
        .target(name: "ChorusTerrain", dependencies: ["ChorusTensor", "ChorusMedia"]),

        // Services: thin adapters from wire messages to the model libraries above.
        .target(name: "VisionService", dependencies: ["ChorusServiceKit", "ChorusInput", "ChorusAPI", "ChorusWire", "ChorusCLIP", "ChorusLLaVA", "ChorusLLM", "ChorusTensor", "ChorusMedia", "CZlib",
                                                    .product(name: "Logging", package: "swift-log")]),
        .target(name: "DiffusionService", dependencies: ["ChorusServiceKit", "ChorusInput", "ChorusAPI", "ChorusWire", "ChorusTensor", "ChorusMedia", "ChorusText", "ChorusCLIP",
                                                       "ChorusStableDiffusion", "ChorusTerrain",
                                                       .product(name: "Yams", package: "Yams")]),
        .target(name: "SpeechService", dependencies: ["ChorusServiceKit", "ChorusInput", "ChorusAPI", "ChorusWire", "ChorusTensor", "ChorusMedia", "ChorusText",
                                                    "ChorusWhisper", "ChorusVITS", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Gateway", dependencies: [
            "ChorusServiceKit", "ChorusAPI", "ChorusWire", "ChorusMedia",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The OpenAI-compatible HTTP front of the gateway (Hummingbird), a client of the gateway's wire port.
        .target(name: "GatewayHTTP", dependencies: [
            "Gateway", "ChorusAPI", "ChorusWire", "ChorusMedia", "ChorusInput",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ], plugins: ["EmbedPlayground"]),

        .executableTarget(name: "chorus", dependencies: [
            "ChorusWire", "ChorusAPI", "ChorusServiceKit", "VisionService", "DiffusionService", "SpeechService",
            "Gateway", "GatewayHTTP", "ChorusTensor", "ChorusMedia", "ChorusCLIP", "ChorusLLaVA",
            "ChorusWhisper", "ChorusVITS", "ChorusStableDiffusion", "ChorusTerrain", "ChorusTLS", "ChorusLoad",
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // `chorus load`: load levels (closed loop, open loop at a rate), HDR latency histograms, reports.
        .target(name: "ChorusLoad", dependencies: [
            "ChorusAPI", "ChorusWire", "ChorusMedia",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .testTarget(name: "ChorusLoadTests", dependencies: ["ChorusLoad", "ChorusWire", "ChorusMedia"]),

        // libFuzzer entry points for every parser a client's bytes reach (docs/contributing.md#fuzzing, scripts/fuzz).
        .target(name: "CFuzzDriver", path: "Fuzz/CFuzzDriver"),
        .target(name: "ChorusFuzzTargets", dependencies: [
            "ChorusAPI", "ChorusWire", "ChorusMedia", "ChorusTensor", "ChorusText", "ChorusStableDiffusion", "Gateway", "GatewayHTTP",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ], path: "Fuzz/Targets"),
        .executableTarget(name: "chorus-fuzz", dependencies: ["ChorusFuzzTargets", "CFuzzDriver"], path: "Fuzz/Driver"),
        .testTarget(name: "ChorusFuzzTests", dependencies: ["ChorusFuzzTargets"]),

        .testTarget(name: "ChorusWireTests", dependencies: [
            "ChorusWire", "ChorusAPI", "ChorusProto", "ChorusTestSupport", "CWireFrame",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        // The router with stand-in replicas in this process: selection, ejection, failover, limits.
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "GatewayHTTP", "ChorusAPI", "ChorusWire", "ChorusTestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // Helpers the test targets share (where the real weights are).
        .target(name: "ChorusTestSupport", path: "Tests/ChorusTestSupport"),
        .testTarget(name: "ChorusTensorTests", dependencies: ["ChorusTensor", "CKernels", "ChorusTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ChorusInputTests", dependencies: ["ChorusInput"]),
        .testTarget(name: "ChorusMediaTests", dependencies: ["ChorusMedia", "ChorusTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ChorusTextTests", dependencies: ["ChorusText", "ChorusTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SpeechServiceTests", dependencies: ["SpeechService", "ChorusWhisper", "ChorusVITS", "ChorusTensor", "ChorusMedia", "ChorusText", "ChorusTestSupport",
                                                         "ChorusAPI", "ChorusWire", "ChorusServiceKit", .product(name: "Logging", package: "swift-log")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "DiffusionServiceTests", dependencies: ["DiffusionService", "ChorusStableDiffusion", "ChorusTerrain", "ChorusTensor", "ChorusMedia", "ChorusTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ChorusLLMTests", dependencies: ["ChorusLLM", "ChorusTensor", "ChorusText", "ChorusTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ChorusLLaVATests", dependencies: ["ChorusLLaVA", "ChorusLLM", "ChorusCLIP", "ChorusTensor", "ChorusMedia", "ChorusText", "ChorusTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "VisionServiceTests", dependencies: ["VisionService", "ChorusCLIP", "ChorusTensor", "ChorusMedia", "ChorusAPI", "ChorusWire", "ChorusTestSupport"],
                    resources: [.copy("Fixtures")]),
        // Real processes of the chorus binary on loopback; the dependency makes `swift test` build it.
        .testTarget(name: "ChorusSystemTests", dependencies: [
            "ChorusWire", "ChorusAPI", "chorus", "ChorusTestSupport", "ChorusTensor", "ChorusTLS",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)

import ArgumentParser
import ChorusAPI
import ChorusLoad
import ChorusTLS
import ChorusWire
import Foundation

/// `chorus load`: one method of a service (or of the gateway's native port) under load, level by level.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test one method: a concurrency sweep or a request rate, with latency percentiles, throughput and errors by status.",
        discussion: """
            The request is JSON as `chorus call` takes it; --file puts a file's bytes in a bytes field, --inputs
            cycles the files of a folder through one. Closed loop (--concurrency N or a sweep FROM:TO:xF /
            FROM:TO:+S) keeps N calls in flight; open loop (--rate R, or a sweep) sends R requests per second
            whatever the answers, as Poisson or constant arrivals. Each level runs --warmup calls first (not
            measured), then --requests calls or --duration seconds. Streaming methods also report the time to
            their first answer (first token, segment, audio chunk or step). Errors are counted by status code,
            never averaged in. Latencies come from the monotonic clock into HDR histograms.
              chorus load speech.Transcribe '{}' --file audio.wav=clip.wav --target 127.0.0.1:7103 --concurrency 1:4:x2 --requests 20
              chorus load vision.EmbedTexts '{"texts": ["a cat"]}' --rate 1:20:+5 --duration 10 --json run.json
            """)

    @Argument(help: "The method: speech.Transcribe, vision.EmbedTexts, diffusion.TextToImage ... (chorus call --list).")
    var method: String

    @Argument(help: "The request as JSON.")
    var request = "{}"

    @Option(help: "Address of a service or the gateway's native port.")
    var target = "127.0.0.1:7100"

    @Option(name: .customLong("file"), help: "FIELD=PATH: put the file's bytes into a bytes field (dotted path). Repeatable.")
    var files: [String] = []

    @Option(help: "FIELD=DIR: call i takes the i-th file of DIR (sorted, cycling) into the bytes field.")
    var inputs: String?

    @Option(help: "Closed loop: calls in flight, a number, a list (1,4,16) or a sweep FROM:TO:xFACTOR or FROM:TO:+STEP.")
    var concurrency = "1"

    @Option(help: "Open loop instead of --concurrency: requests per second, a number, a list or a sweep.")
    var rate: String?

    @Option(help: "Open loop arrivals: poisson (exponential gaps) or constant.")
    var arrivals = "poisson"

    @Option(help: "Measured requests per level.")
    var requests: Int?

    @Option(help: "Seconds per level (with --requests, whichever ends first; 10 when neither is given).")
    var duration: Double?

    @Option(help: "Calls before each level is measured (warm caches and connections; not reported).")
    var warmup = 1

    @Option(help: "Seed of the Poisson arrivals, so a run is repeatable.")
    var seed: UInt64 = 1

    @Option(help: "Give each call up to this many milliseconds (its deadline travels with it).")
    var timeoutMs: Int?

    @Option(help: "Write the results as JSON to this file ('-': standard output instead of the table).")
    var json: String?

    @Option(help: "Write the results as CSV (perf_analyzer's column names where they apply) to this file.")
    var csv: String?

    @Option(help: "Call over TLS, trusting this CA (PEM) for the target's certificate.")
    var tlsCa: String?

    @Flag(help: "No live progress line on a terminal.")
    var quiet = false

    func validate() throws {
        if let requests { guard (1...10_000_000).contains(requests) else { throw ValidationError("--requests must be 1 ... 10000000") } }
        if let duration { guard duration > 0 && duration <= 86_400 else { throw ValidationError("--duration must be 0 ... 86400 seconds") } }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be 0 ... 100000") }
        guard ["poisson", "constant"].contains(arrivals) else { throw ValidationError("--arrivals is poisson or constant") }
        if let timeoutMs { guard (1...86_400_000).contains(timeoutMs) else { throw ValidationError("--timeout-ms must be 1 ... 86400000") } }
        _ = try levels()
    }

    /// The levels to run, from --rate or --concurrency.
    func levels() throws -> [LoadMode] {
        if let rate {
            return try Self.sweep(rate, name: "--rate", range: 0.001...100_000).map { .rate($0, poisson: arrivals == "poisson") }
        }
        return try Self.sweep(concurrency, name: "--concurrency", range: 1...4096).map { .concurrency(Int($0)) }  // checked: within 1...4096
    }

    /// "8", "1,4,16", "1:64:x2" or "2:20:+2" as the values in order; at most 64 of them.
    static func sweep(_ text: String, name: String, range: ClosedRange<Double>) throws -> [Double] {
        func number(_ part: Substring) throws -> Double {
            guard let value = Double(part), value.isFinite, range.contains(value) else {
                throw ValidationError("\(name) '\(text)': '\(part)' is not a number in \(range.lowerBound) ... \(range.upperBound)")
            }
            return value
        }
        let parts = text.split(separator: ":")
        var values: [Double]
        if parts.count == 3 {
            let from = try number(parts[0]), to = try number(parts[1])
            let step = parts[2]
            guard from <= to, let op = step.first, op == "x" || op == "+", let amount = Double(step.dropFirst()), amount.isFinite,
                  op == "x" ? amount > 1 : amount > 0 else {
                throw ValidationError("\(name) '\(text)': a sweep is FROM:TO:xFACTOR (factor > 1) or FROM:TO:+STEP (step > 0), FROM ≤ TO")
            }
            values = []
            var value = from
            while value <= to * (1 + 1e-9) && values.count <= 64 {
                values.append(value)
                value = op == "x" ? value * amount : value + amount
            }
        } else if parts.count == 1 {
            values = try text.split(separator: ",").map(number)
        } else {
            throw ValidationError("\(name) '\(text)' is a number, a list (1,4,16) or a sweep FROM:TO:xFACTOR / FROM:TO:+STEP")
        }
        guard !values.isEmpty, values.count <= 64 else { throw ValidationError("\(name) '\(text)' gives \(values.count) levels; 1 ... 64 run") }
        return values
    }

    func run() async throws {
        let resolved = try CallCommand.resolve(method)
        let template = try CallCommand.withFiles(files, in: JSONSerialization.jsonObject(with: Data(request.utf8), options: [.fragmentsAllowed]))
        var bodies = [template]
        if let inputs {
            guard let eq = inputs.firstIndex(of: "=") else { throw ValidationError("--inputs takes FIELD=DIR, got '\(inputs)'") }
            let field = String(inputs[..<eq]), folder = String(inputs[inputs.index(after: eq)...])
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                throw ValidationError("--inputs folder '\(folder)' cannot be read")
            }
            let files = names.filter { !$0.hasPrefix(".") }.sorted()
            guard !files.isEmpty else { throw ValidationError("--inputs folder '\(folder)' holds no files") }
            bodies = try files.map { name in
                let path = (folder as NSString).appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
                return try CallCommand.setting(field.split(separator: ".").map(String.init), to: data.base64EncodedString(), in: template)
            }
        }
        let payloads = try bodies.map { body -> [UInt8] in
            guard JSONSerialization.isValidJSONObject(body) else { throw ValidationError("the request must be a JSON object") }
            do {
                return try resolved.encodeRequest(JSONSerialization.data(withJSONObject: body))
            } catch {
                throw ValidationError("the request does not fit \(resolved.requestType): \(WireStatus.from(error).message)")
            }
        }

        let client = try WireClient(address: target, configuration: .init(security: try tlsCa.map { try TLS.client(trusting: $0) }))
        defer { client.close() }
        do {
            _ = try await client.ping(timeout: .seconds(5))
        } catch {
            throw ValidationError("cannot reach \(target): \(WireStatus.from(error).message)")
        }
        let caller = WireLoadCaller(channel: client, method: resolved, requests: payloads, timeout: timeoutMs.map { .milliseconds(Int64($0)) })
        let limits = LoadLimits(requests: requests, duration: (duration ?? (requests == nil ? 10 : nil)).map { .milliseconds(Int64($0 * 1000)) },
                                warmup: warmup)
        let runner = LoadRunner(caller: caller, limits: limits, seed: seed)
        let progress = ProgressLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        var results: [LevelResult] = []
        for level in try levels() {
            let result = await runner.run(level) { progress.show($0) }
            progress.clear()
            results.append(result)
        }
        let report = LoadReport(target: target, method: resolved.descriptor.path, levels: results)
        if let json {
            let data = try report.jsonData()
            if json == "-" { FileHandle.standardOutput.write(data + Data("\n".utf8)) } else { try data.write(to: URL(fileURLWithPath: json)) }
        }
        if let csv { try Data(report.csv.utf8).write(to: URL(fileURLWithPath: csv)) }
        if json != "-" { print(report.table, terminator: "") }
    }
}

/// One line on standard error, rewritten at most four times a second, while a level runs on a terminal.
final class ProgressLine: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var last = ContinuousClock.now - .seconds(1)

    init(enabled: Bool) {
        self.enabled = enabled
    }

    func show(_ level: LevelResult) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let due = lock.withLock { () -> Bool in
            guard now - last >= .milliseconds(250) else { return false }
            last = now
            return true
        }
        guard due else { return }
        let line = String(format: "\r%@: %d done, %d errors, p50 %.1f ms   ", "\(level.mode)", level.sent, level.failed,
                          Double(level.latency.percentile(50)) / 1000)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

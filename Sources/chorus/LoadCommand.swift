import ArgumentParser
import ChorusAPI
import ChorusLoad
import ChorusTLS
import ChorusWire
import Foundation

/// `chorus load`: one method of a service, of the gateway's native port or of the OpenAI HTTP API under
/// load, level by level.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test one method: a concurrency or rate sweep, with latency percentiles, throughput, errors by status and each modality's own figures.",
        discussion: """
            METHOD is a wire method (speech.Transcribe, vision.Chat, diffusion.TextToImage, gateway.Compose, \
            or compose:RECIPE for a built-in recipe) called over the native protocol, or an HTTP route \
            (/v1/chat/completions, /v1/audio/transcriptions ...) of the gateway's OpenAI API (--protocol http, \
            implied by a leading /). The request is JSON as `chorus call` takes it, or the HTTP body; --file \
            puts a file in a bytes field (a form file over HTTP), --inputs cycles a folder's files through \
            one, --prompts the lines of a JSONL file, --synthetic makes inputs up (audio:5s, image:512, \
            text:64); --order random draws them with --seed instead of cycling.

            Closed loop (--concurrency N or a sweep FROM:TO:xF / FROM:TO:+S) keeps N calls in flight; open \
            loop (--rate R or a sweep) sends R requests per second whatever the answers: Poisson arrivals, \
            gamma with --burstiness (vLLM's), or constant. Each level runs --warmup calls first, then \
            --requests calls or --duration seconds; with neither, it runs windows of --window-ms until the \
            last three agree within --stability-percent (perf_analyzer's rule) or --max-trials run out.

            Reported: latency mean/std/p50/p90/p95/p99/max, requests/s, errors by status (never averaged in); \
            streams' time to first answer; chats' TTFT, TPOT, inter-token latency and tokens/s; speech's \
            real-time factor (processing ÷ audio); diffusion's s/step, first preview and images/s; goodput \
            against --slo; the server's own Status (or /metrics) before and after; the generator's CPU use.
            """)

    @Argument(help: "A wire method (speech.Transcribe, compose:describe-and-speak ...) or an HTTP route (/v1/chat/completions).")
    var method: String?

    @Argument(help: "The request as JSON (the HTTP body for an HTTP route).")
    var request = "{}"

    @Option(help: "Address of a service, the gateway's native port, or the gateway's HTTP API (with --protocol http); $CHORUS_TARGET sets the default.")
    var target = ConnectionDefaults.target

    @Option(name: .customLong("protocol"), help: "wire (the native protocol) or http (the OpenAI API); a method starting with / means http.")
    var transport: String?

    @Option(name: .customLong("file"), help: "FIELD=PATH: put the file's bytes into a bytes field (dotted path), or send it as a form file over HTTP. Repeatable.")
    var files: [String] = []

    @Option(help: "FIELD=DIR: call i takes the i-th file of DIR (sorted, cycling) into the field.")
    var inputs: String?

    @Option(help: "FIELD=FILE.jsonl: call i puts the i-th prompt of the file (a JSON string, or an object's \"prompt\") into the field.")
    var prompts: String?

    @Option(help: "Which prepared request each call sends: cycle (in turn) or random (drawn with --seed).")
    var order = "cycle"

    @Option(help: "FIELD=KIND:SIZE: made-up inputs, audio:SECONDS (a WAV), image:SIDE (a PNG) or text:WORDS. Repeatable.")
    var synthetic: [String] = []

    @Option(help: "Closed loop: calls in flight, a number, a list (1,4,16) or a sweep FROM:TO:xFACTOR or FROM:TO:+STEP.")
    var concurrency = "1"

    @Option(name: [.customLong("rate"), .customLong("rate-sweep")], help: "Open loop instead of --concurrency: requests per second, a number, a list or a sweep.")
    var rate: String?

    @Option(help: "Open loop arrivals: poisson (gamma with --burstiness) or constant.")
    var arrivals = "poisson"

    @Option(help: "Shape of the gamma-distributed gaps (vLLM's): 1 is Poisson, below 1 burstier, above 1 more even.")
    var burstiness = 1.0

    @Option(help: "Measured requests per level.")
    var requests: Int?

    @Option(help: "Seconds per level (with --requests, whichever ends first; neither: until stable).")
    var duration: Double?

    @Option(help: "Length of a measurement window in milliseconds.")
    var windowMs = 5000

    @Option(help: "A level is stable when each of its last three windows' throughput and latency lie within this percent of their average.")
    var stabilityPercent = 10.0

    @Option(help: "Windows a level may take to become stable (then it is reported as not stable).")
    var maxTrials = 10

    @Option(help: "The latency percentile the stability rule compares (default: the mean).")
    var percentile: Double?

    @Option(help: "Calls before each level is measured (warm caches and connections; not reported).")
    var warmup = 1

    @Option(help: "Seed of the arrivals and the synthetic inputs, so a run repeats.")
    var seed: UInt64 = 1

    @Option(help: "Give each call up to this many milliseconds (its deadline travels with it over the wire).")
    var timeoutMs: Int?

    @Option(help: "Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=2s,rtf=0.5,step=300ms.")
    var slo: String?

    @Option(help: "Read Status before and after each level from this address (default: the target over the wire; HTTP reads /metrics).")
    var statusTarget: String?

    @Option(help: "Write the results as JSON to this file ('-': standard output instead of the table).")
    var json: String?

    @Option(help: "Write the results as CSV (perf_analyzer's column names where they apply) to this file.")
    var csv: String?

    @Option(help: "Draw latency percentiles against throughput across the levels as an SVG.")
    var plot: String?

    @Option(name: .customLong("compare"), parsing: .upToNextOption, help: "A.json B.json: print B's figures over A's, level by level, and exit.")
    var compare: [String] = []

    @Option(help: "Call over TLS, trusting this CA (PEM) for the target's certificate.")
    var tlsCa: String?

    @Option(help: "API key: 'authorization: Bearer KEY' metadata over the wire, the Authorization header over HTTP (or set CHORUS_API_KEY).")
    var apiKey: String?

    @Flag(help: "No live progress line on a terminal.")
    var quiet = false

    var isHTTP: Bool { transport == "http" || (transport == nil && method?.hasPrefix("/") == true) }

    func validate() throws {
        if !compare.isEmpty {
            guard compare.count == 2 else { throw ValidationError("--compare takes two reports: A.json B.json") }
            return
        }
        guard let method, !method.isEmpty else { throw ValidationError("give a METHOD to load (or --compare A.json B.json)") }
        if let transport { guard ["wire", "http"].contains(transport) else { throw ValidationError("--protocol is wire or http") } }
        if isHTTP { guard method.hasPrefix("/") else { throw ValidationError("over HTTP the method is a route such as /v1/chat/completions") } }
        if let requests { guard (1...10_000_000).contains(requests) else { throw ValidationError("--requests must be 1 ... 10000000") } }
        if let duration { guard duration > 0 && duration <= 86_400 else { throw ValidationError("--duration must be 0 ... 86400 seconds") } }
        guard (0...100_000).contains(warmup) else { throw ValidationError("--warmup must be 0 ... 100000") }
        guard ["cycle", "random"].contains(order) else { throw ValidationError("--order is cycle or random") }
        guard ["poisson", "constant"].contains(arrivals) else { throw ValidationError("--arrivals is poisson or constant") }
        guard burstiness.isFinite && burstiness >= 0.01 && burstiness <= 100 else { throw ValidationError("--burstiness must be 0.01 ... 100") }
        guard (10...3_600_000).contains(windowMs) else { throw ValidationError("--window-ms must be 10 ... 3600000") }
        guard stabilityPercent.isFinite && stabilityPercent > 0 && stabilityPercent <= 100 else { throw ValidationError("--stability-percent must be 0 ... 100") }
        guard (3...1000).contains(maxTrials) else { throw ValidationError("--max-trials must be 3 ... 1000") }
        if let percentile { guard percentile.isFinite && percentile > 0 && percentile <= 100 else { throw ValidationError("--percentile must be 0 ... 100") } }
        if let timeoutMs { guard (1...86_400_000).contains(timeoutMs) else { throw ValidationError("--timeout-ms must be 1 ... 86400000") } }
        if let slo { _ = try objectives(slo) }
        _ = try levels()
    }

    func objectives(_ text: String) throws -> ServiceLevelObjectives {
        do { return try ServiceLevelObjectives(parsing: text) } catch { throw ValidationError("\(error)") }
    }

    /// The levels to run, from --rate or --concurrency.
    func levels() throws -> [LoadMode] {
        if let rate {
            let gaps: Arrivals = arrivals == "constant" ? .constant : .gamma(burstiness: burstiness)
            return try Self.sweep(rate, name: "--rate", range: 0.001...100_000).map { .rate($0, gaps) }
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
        if compare.count == 2 {
            let a = try LoadComparison.read(compare[0]), b = try LoadComparison.read(compare[1])
            print(LoadComparison(a: a, b: b).table, terminator: "")
            return
        }
        let key = apiKey ?? ProcessInfo.processInfo.environment["CHORUS_API_KEY"]
        let security = try tlsCa.map { try TLS.client(trusting: $0) }
        let bodies = try LoadBody.make(template: request, files: files, inputs: inputs, prompts: prompts, synthetic: synthetic, seed: seed)
        let inputOrder: InputOrder = order == "random" ? .random(seed: seed) : .cycle
        let timeout = timeoutMs.map { Duration.milliseconds($0) }
        let caller: any LoadCaller, probe: (any ServerProbe)?, name: String
        var closers: [() -> Void] = []
        if isHTTP, let route = method {
            let http = try HTTPLoadCaller(target: target, path: route, requests: try bodies.map(Self.httpRequest), timeout: timeout,
                                          security: security, apiKey: key, order: inputOrder)
            guard await http.reachable() else { throw ValidationError("cannot reach \(target) over HTTP") }
            closers.append(http.close)
            caller = http
            name = route
            if let statusTarget {
                probe = try await Self.wireProbe(statusTarget, service: ChorusAPI.Gateway.serviceName, security: security, key: key, closers: &closers)
            } else {
                probe = try HTTPMetricsProbe(target: target, security: security)
            }
        } else {
            let (resolved, bodies) = try Self.wireMethod(method ?? "", bodies: bodies)
            let client = try WireClient(address: target, configuration: .init(metadata: key.map { ["authorization": "Bearer \($0)"] } ?? [:], security: security))
            closers.append(client.close)
            do {
                _ = try await client.ping(timeout: .seconds(5))
            } catch {
                throw ValidationError("cannot reach \(target): \(WireStatus.from(error).message)")
            }
            let requests = try bodies.map { body -> LoadRequest in
                let json = try body.withFilesInline()
                do {
                    return LoadRequest(payload: try resolved.encodeRequest(JSONSerialization.data(withJSONObject: json)), audioSeconds: body.audioSeconds)
                } catch {
                    throw ValidationError("the request does not fit \(resolved.requestType): \(WireStatus.from(error).message)")
                }
            }
            caller = WireLoadCaller(channel: client, method: resolved, requests: requests, timeout: timeoutMs.map { .milliseconds(Int64($0)) },
                                    order: inputOrder)
            name = resolved.descriptor.path
            probe = try await Self.wireProbe(statusTarget, service: resolved.descriptor.service, security: security, key: key, closers: &closers,
                                             otherwise: client)
        }
        defer { closers.forEach { $0() } }

        let windows = MeasurementWindows(length: .milliseconds(windowMs), percent: stabilityPercent, maxTrials: maxTrials, percentile: percentile)
        let limits = LoadLimits(requests: requests, duration: duration.map { .milliseconds(Int64($0 * 1000)) }, warmup: warmup, windows: windows)
        let goals = try slo.map(objectives)
        let runner = LoadRunner(caller: caller, limits: limits, seed: seed, objectives: goals)
        let progress = ProgressLine(enabled: !quiet && isatty(STDERR_FILENO) == 1)
        var results: [LevelResult] = []
        for level in try levels() {
            let before = await probe?.figures()
            var result = await runner.run(level) { progress.show($0) }
            progress.clear()
            result.serverBefore = before
            result.serverAfter = await probe?.figures()
            if result.clientCores >= 0.9 {
                FileHandle.standardError.write(Data(String(format: "warning: at %@ the load generator used %.2f cores of processor time; it may be the bottleneck, not the server\n",
                                                           "\(level)", result.clientCores).utf8))
            }
            results.append(result)
        }
        let report = LoadReport(target: target, method: name, levels: results, objectives: goals)
        if let json {
            let data = try report.jsonData()
            if json == "-" { FileHandle.standardOutput.write(data + Data("\n".utf8)) } else { try data.write(to: URL(fileURLWithPath: json)) }
        }
        if let csv { try Data(report.csv.utf8).write(to: URL(fileURLWithPath: csv)) }
        if let plot { try Data(LoadPlot(report: report).svg.utf8).write(to: URL(fileURLWithPath: plot)) }
        if json != "-" { print(report.table, terminator: "") }
    }

    /// The method a wire name means; `compose:RECIPE` is the gateway's Compose with the recipe set.
    static func wireMethod(_ name: String, bodies: [LoadBody]) throws -> (AnyMethod, [LoadBody]) {
        guard name.hasPrefix("compose:") else { return (try CallCommand.resolve(name), bodies) }
        let recipe = String(name.dropFirst("compose:".count))
        guard !recipe.isEmpty else { throw ValidationError("compose:RECIPE names a recipe, e.g. compose:describe-and-speak") }
        let compose = try CallCommand.resolve("gateway.Compose")
        return (compose, try bodies.map { body in
            var body = body
            body.json = try CallCommand.setting(["recipe"], to: recipe, in: body.json)
            return body
        })
    }

    static func httpRequest(_ body: LoadBody) throws -> HTTPLoadRequest {
        var request: HTTPLoadRequest
        if body.files.isEmpty {
            request = try HTTPLoadRequest.json(body.json)
        } else {
            request = try HTTPLoadRequest.multipart(fields: body.json as? [String: Any] ?? [:], files: body.files)
        }
        request.audioSeconds = body.audioSeconds
        return request
    }

    static func wireProbe(_ address: String?, service: String, security: ConnectionSecurity?, key: String?, closers: inout [() -> Void],
                          otherwise existing: WireClient? = nil) async throws -> any ServerProbe {
        if let address {
            let client = try WireClient(address: address, configuration: .init(metadata: key.map { ["authorization": "Bearer \($0)"] } ?? [:], security: security))
            closers.append(client.close)
            return WireStatusProbe(channel: client, service: service)
        }
        guard let existing else { throw ValidationError("--status-target needs an address") }
        return WireStatusProbe(channel: existing, service: service)
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

    func show(_ window: LevelResult) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let due = lock.withLock { () -> Bool in
            guard now - last >= .milliseconds(250) else { return false }
            last = now
            return true
        }
        guard due else { return }
        let line = String(format: "\r%@, this window: %d done, %d errors, p50 %.1f ms   ", "\(window.mode)", window.sent, window.failed,
                          Double(window.latency.percentile(50)) / 1000)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

extension LoadCommand: HasExamples {
    static let examples = [
        "chorus load speech.Transcribe '{}' --file audio.wav=clip.wav --target 127.0.0.1:7103 --concurrency 1:4:x2 --requests 20",
        "chorus load /v1/chat/completions '{\"model\":\"llava\",\"stream\":true,\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}' --target 127.0.0.1:7180 --concurrency 1:8:x2 --slo ttft=200ms,tpot=50ms",
        "chorus load vision.EmbedTexts '{}' --synthetic texts.0=text:32 --rate 1:20:+5 --duration 10 --json run.json --plot run.svg",
        "chorus load --compare before.json after.json",
    ]
}

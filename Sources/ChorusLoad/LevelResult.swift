/// The measured results of one load level. Latencies are kept in HDR histograms (µs); ratios such as the
/// real-time factor in histograms of millionths, so their percentiles come the same way.
public struct LevelResult: Sendable {
    public var mode: LoadMode
    public var sent = 0
    public var succeeded = 0
    /// Failed calls by what they failed with: never averaged into the latencies.
    public var failures: [String: Int] = [:]
    /// End to end, successful calls only.
    public var latency = LatencyHistogram()
    /// Time to the first answer of streaming calls (TTFT for a chat).
    public var firstAnswer = LatencyHistogram()
    public var answers = 0
    public var elapsed: Duration = .zero
    /// Open loop only: arrivals that found the generator's outstanding calls full and were not sent,
    /// counted, never silently skipped.
    public var notSent = 0

    // Chat: vLLM's definitions. TPOT per call = (E2E − TTFT) ÷ (tokens − 1); ITL = every gap between tokens.
    public var tokens = 0
    public var timePerOutputToken = LatencyHistogram()
    public var interTokenLatency = LatencyHistogram()
    // Speech: processing ÷ audio duration, per call (millionths), and the totals for the overall factor.
    public var realTimeFactor = LatencyHistogram()
    public var audioInSeconds = 0.0
    public var audioOutSeconds = 0.0
    public var audioProcessingSeconds = 0.0
    // Diffusion.
    public var steps = 0
    public var images = 0
    public var timePerStep = LatencyHistogram()
    public var firstPreview = LatencyHistogram()

    /// Calls that met every objective of --slo (nil without objectives).
    public var metObjectives: Int?
    /// The generator's own processor time (user + system) while the level ran, and that as a share of
    /// one core over the level's whole run (1 = a whole core).
    public var clientCPUSeconds = 0.0
    public var clientCores = 0.0
    /// Each measurement window's figures, and whether the last three agreed (nil: fewer than three).
    public var windows: [WindowSummary] = []
    public var stable: Bool?
    /// The server's own figures read before and after the level.
    public var serverBefore: ServerFigures?
    public var serverAfter: ServerFigures?

    public init(mode: LoadMode) {
        self.mode = mode
    }

    public var seconds: Double { elapsed.seconds }
    /// Calls finished per second (failures included).
    public var throughput: Double { seconds > 0 ? Double(sent) / seconds : 0 }
    public var failed: Int { failures.values.reduce(0, +) }
    /// Calls per second that succeeded and met every objective.
    public var goodput: Double? { metObjectives.map { seconds > 0 ? Double($0) / seconds : 0 } }
    /// All processing time ÷ all audio: the run's real-time factor, the way speech benchmarks quote it.
    public var overallRealTimeFactor: Double? {
        let audio = audioInSeconds > 0 ? audioInSeconds : audioOutSeconds
        return audio > 0 ? audioProcessingSeconds / audio : nil
    }

    mutating func add(_ outcome: CallOutcome, objectives: ServiceLevelObjectives?) {
        sent += 1
        answers += outcome.answers
        guard outcome.failure == nil else {
            failures[outcome.failure ?? "", default: 0] += 1
            return
        }
        succeeded += 1
        latency.record(outcome.latency)
        if let first = outcome.firstAnswer { firstAnswer.record(first) }
        var tpot: Duration?
        if let count = outcome.tokens {
            tokens += count
            if count > 1, let first = outcome.firstAnswer {
                tpot = (outcome.latency - first) / (count - 1)
                timePerOutputToken.record(tpot ?? .zero)
            }
            for gap in outcome.tokenGaps { interTokenLatency.record(gap) }
        }
        var rtf: Double?
        if let audio = outcome.audioInSeconds ?? outcome.audioOutSeconds, audio > 0 {
            rtf = outcome.latency.seconds / audio
            realTimeFactor.record(microseconds: UInt64(clamping: Int64((rtf ?? 0) * 1e6)))
            audioProcessingSeconds += outcome.latency.seconds
            if let input = outcome.audioInSeconds { audioInSeconds += input } else { audioOutSeconds += audio }
        }
        var perStep: Duration?
        if let count = outcome.steps, count > 0 {
            steps += count
            perStep = outcome.latency / count
            timePerStep.record(perStep ?? .zero)
        }
        if let preview = outcome.firstPreview { firstPreview.record(preview) }
        images += outcome.images ?? 0
        if let objectives {
            metObjectives = (metObjectives ?? 0) + (objectives.met(by: outcome, timePerOutputToken: tpot, realTimeFactor: rtf, perStep: perStep) ? 1 : 0)
        }
    }

    /// Two windows of the same level as one.
    mutating func merge(_ other: LevelResult) {
        sent += other.sent
        succeeded += other.succeeded
        failures.merge(other.failures, uniquingKeysWith: +)
        latency.add(other.latency)
        firstAnswer.add(other.firstAnswer)
        answers += other.answers
        elapsed += other.elapsed
        notSent += other.notSent
        tokens += other.tokens
        timePerOutputToken.add(other.timePerOutputToken)
        interTokenLatency.add(other.interTokenLatency)
        realTimeFactor.add(other.realTimeFactor)
        audioInSeconds += other.audioInSeconds
        audioOutSeconds += other.audioOutSeconds
        audioProcessingSeconds += other.audioProcessingSeconds
        steps += other.steps
        images += other.images
        timePerStep.add(other.timePerStep)
        firstPreview.add(other.firstPreview)
        if let met = other.metObjectives { metObjectives = (metObjectives ?? 0) + met }
    }

    /// The figures the stability rule compares.
    func summary(_ windows: MeasurementWindows) -> WindowSummary {
        let latency = windows.percentile.map { Double(self.latency.percentile($0)) } ?? self.latency.mean
        return WindowSummary(seconds: seconds, completed: sent, throughput: throughput, latencyMicroseconds: latency)
    }
}

/// A service's own figures, from its Status (or the gateway's /metrics).
public struct ServerFigures: Sendable, Equatable {
    public var inFlight: Int
    public var queueDepth: Int
    public var residentBytes: UInt64
    public var peakResidentBytes: UInt64
    public var callsTotal: UInt64
    public var callsFailed: UInt64
    /// The backends behind a gateway, each with its own figures.
    public var backends: [String: ServerFigures] = [:]

    public init(inFlight: Int, queueDepth: Int, residentBytes: UInt64, peakResidentBytes: UInt64, callsTotal: UInt64, callsFailed: UInt64) {
        self.inFlight = inFlight
        self.queueDepth = queueDepth
        self.residentBytes = residentBytes
        self.peakResidentBytes = peakResidentBytes
        self.callsTotal = callsTotal
        self.callsFailed = callsFailed
    }
}

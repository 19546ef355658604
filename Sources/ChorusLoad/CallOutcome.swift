/// What one call did, as the load generator saw it. Beyond the latency, each modality fills what it
/// measures: a chat its tokens and the gaps between them, speech the seconds of audio it took or made,
/// diffusion its steps, previews and images.
public struct CallOutcome: Sendable {
    /// nil when the call succeeded; otherwise what to count it under ("RESOURCE_EXHAUSTED", "HTTP 503").
    public var failure: String?
    /// From sending to the last answer (end to end).
    public var latency: Duration
    /// From sending to the first answer of a streaming call (first token, segment, audio chunk or step).
    public var firstAnswer: Duration?
    /// Answers the call received (1 for unary calls; tokens, segments, chunks or events for streams).
    public var answers: Int
    /// A chat's output tokens (the server's own count when it sends one).
    public var tokens: Int?
    /// The gaps between successive tokens of a chat (inter-token latency).
    public var tokenGaps: [Duration] = []
    /// Seconds of audio the request carried (transcription), or the answers carried (speech synthesis).
    public var audioInSeconds: Double?
    public var audioOutSeconds: Double?
    /// Denoising steps the answer reported, images it returned, and when its first preview came.
    public var steps: Int?
    public var images: Int?
    public var firstPreview: Duration?

    public init(failure: String?, latency: Duration, firstAnswer: Duration? = nil, answers: Int = 1) {
        self.failure = failure
        self.latency = latency
        self.firstAnswer = firstAnswer
        self.answers = answers
    }
}

/// Makes one call of the load (the i-th: inputs are cycled by it).
public protocol LoadCaller: Sendable {
    func call(_ index: Int) async -> CallOutcome
}

extension Duration {
    /// Whole microseconds, 0 for negative durations, saturating far beyond any run.
    var microseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds > 0 || (seconds == 0 && attoseconds > 0) else { return 0 }
        return UInt64(clamping: seconds) &* 1_000_000 &+ UInt64(clamping: attoseconds / 1_000_000_000_000)
    }

    var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) * 1e-18
    }
}

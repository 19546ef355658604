import ChorusAPI
import ChorusWire
import NIOCore

/// One request of a load: its wire bytes, and the seconds of audio it carries (for the real-time factor).
public struct LoadRequest: Sendable {
    public var payload: ByteBuffer
    public var audioSeconds: Double?

    public init(payload: [UInt8], audioSeconds: Double? = nil) {
        self.payload = ByteBuffer(bytes: payload)
        self.audioSeconds = audioSeconds
    }
}

/// Calls one method over the wire — a service, or the gateway's native port — with requests encoded from
/// JSON as `chorus call` takes them, cycled by call number (or drawn at random).
public struct WireLoadCaller: LoadCaller {
    let channel: any WireChannel
    let method: AnyMethod
    let requests: [LoadRequest]
    let timeout: TimeAmount?
    let meter: AnswerMeter
    let order: InputOrder

    public init(channel: any WireChannel, method: AnyMethod, requests: [LoadRequest], timeout: TimeAmount?, order: InputOrder = .cycle) {
        precondition(!requests.isEmpty, "a load needs at least one request")  // checked: the command makes one from the template
        self.channel = channel
        self.method = method
        self.requests = requests
        self.timeout = timeout
        meter = AnswerMeter(method: method.descriptor.path)
        self.order = order
    }

    public func call(_ index: Int) async -> CallOutcome {
        let clock = ContinuousClock(), start = clock.now
        let kind = method.descriptor.kind
        let streams = kind == .serverStreaming || kind == .bidirectionalStreaming
        let single = kind == .unary || kind == .serverStreaming
        let request = requests[order.pick(index, of: requests.count)]
        var outcome = CallOutcome(failure: nil, latency: .zero, answers: 0)
        outcome.audioInSeconds = request.audioSeconds
        var lastToken: Duration?
        do {
            let call = try await channel.open(method.descriptor.path, options: CallOptions(deadline: timeout.map { .now() + $0 }),
                                              first: single ? request.payload : nil, endOfStream: single)
            if !single {
                try await call.send(request.payload)
                try await call.halfClose()
            }
            for try await part in call.responses {
                let time = clock.now - start
                outcome.answers += 1
                if streams && outcome.firstAnswer == nil { outcome.firstAnswer = time }
                if let failure = meter.read(part.payload, at: time, into: &outcome, lastToken: &lastToken), outcome.failure == nil {
                    outcome.failure = failure
                }
            }
        } catch {
            outcome.failure = "\(WireStatus.from(error).code)"
        }
        outcome.latency = clock.now - start
        return outcome
    }
}

import ChorusAPI
import ChorusWire
import NIOCore

/// Calls one method over the wire — a service, or the gateway's native port — with requests encoded from
/// JSON as `chorus call` takes them, cycled by call number.
public struct WireLoadCaller: LoadCaller {
    let channel: any WireChannel
    let method: AnyMethod
    let requests: [[UInt8]]
    let timeout: TimeAmount?

    public init(channel: any WireChannel, method: AnyMethod, requests: [[UInt8]], timeout: TimeAmount?) {
        precondition(!requests.isEmpty, "a load needs at least one request")  // checked: the command makes one from the template
        self.channel = channel
        self.method = method
        self.requests = requests
        self.timeout = timeout
    }

    public func call(_ index: Int) async -> CallOutcome {
        let clock = ContinuousClock(), start = clock.now
        let kind = method.descriptor.kind
        let streams = kind == .serverStreaming || kind == .bidirectionalStreaming
        let single = kind == .unary || kind == .serverStreaming
        let payload = requests[index % requests.count]
        var first: Duration?, answers = 0
        do {
            let call = try await channel.open(method.descriptor.path, options: CallOptions(deadline: timeout.map { .now() + $0 }),
                                              first: single ? payload : nil, endOfStream: single)
            if !single {
                try await call.send(payload)
                try await call.halfClose()
            }
            for try await _ in call.responses {
                answers += 1
                if first == nil { first = clock.now - start }
            }
            return CallOutcome(failure: nil, latency: clock.now - start, firstAnswer: streams ? first : nil, answers: answers)
        } catch {
            return CallOutcome(failure: WireStatus.from(error).code, latency: clock.now - start, firstAnswer: streams ? first : nil, answers: answers)
        }
    }
}

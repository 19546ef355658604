import ChorusWire

/// A backend stream read first by the handler (so a bad request is a plain error status, not a stream
/// that fails) and then by the response body's writer: one after the other, never at once.
final class StreamCursor<Element: Sendable>: @unchecked Sendable {
    private var iterator: ResponseStream<Element>.AsyncIterator

    init(_ stream: ResponseStream<Element>) {
        iterator = stream.makeAsyncIterator()
    }

    func next() async throws -> Element? { try await iterator.next() }
}

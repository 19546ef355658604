import Hummingbird
import NIOCore

/// A request's multipart body read part by part as it arrives, under the body limit: a field is gathered,
/// a file can be passed on piece by piece. Read by one task, start to end.
struct MultipartStream {
    private var body: RequestBody.AsyncIterator
    private var reader: MultipartReader
    private var events: [MultipartReader.Event] = []
    private var index = 0
    private var ended = false
    private var received = 0
    let limit: Int
    /// The body's pieces as they came, kept while a middleware peeks (`replayed`).
    private var recorded: [ByteBuffer]?

    init(_ request: Request, limit: Int, recording: Bool = false) throws {
        body = request.body.makeAsyncIterator()
        reader = try MultipartReader(contentType: request.headers[.contentType] ?? "")
        self.limit = limit
        recorded = recording ? [] : nil
    }

    /// The next event, or nil after the closing delimiter.
    mutating func next() async throws -> MultipartReader.Event? {
        while index == events.count {
            if ended { return nil }
            index = 0
            guard let piece = try await body.next() else {
                events = try reader.finish()
                ended = true
                continue
            }
            received += piece.readableBytes
            guard received <= limit else {
                throw OpenAIError.bodyTooLarge(limit)
            }
            recorded?.append(piece)
            events = try reader.feed(piece)
        }
        defer { index += 1 }
        return events[index]
    }

    /// The next part's head, skipping whatever is left of the current part.
    mutating func nextPart() async throws -> MultipartReader.PartHead? {
        while let event = try await next() {
            if case .part(let head) = event { return head }
        }
        return nil
    }

    /// The next piece of the current part's content, or nil at its end.
    mutating func nextContent() async throws -> ByteBuffer? {
        while let event = try await next() {
            switch event {
            case .content(let bytes): return bytes
            case .partEnd: return nil
            case .part: continue
            }
        }
        return nil
    }

    /// The rest of the current part, gathered (the body limit bounds it).
    mutating func gatherPart() async throws -> [UInt8] {
        var data: [UInt8] = []
        while var piece = try await nextContent() { data += piece.readBytes(length: piece.readableBytes) ?? [] }
        return data
    }

    /// Every remaining part, gathered.
    mutating func gatherParts() async throws -> [MultipartForm.Part] {
        var parts: [MultipartForm.Part] = []
        while let head = try await nextPart() {
            parts.append(MultipartForm.Part(name: head.name, filename: head.filename, data: try await gatherPart()))
        }
        return parts
    }

    /// The request's body as the client sent it: the pieces read so far, then the rest still unread, for the
    /// route after a middleware that read only as far as it needed (a `model` field).
    consuming func replayed() -> RequestBody {
        RequestBody(asyncSequence: ReplayedBody(prefix: recorded ?? [], rest: RestOfBody(body)))
    }
}

extension MultipartStream {
    /// The `model` field of a multipart request, read without taking the body from the route: the body is read
    /// only up to the end of that field (or to its end, when the form has none) and handed on whole.
    static func peekModel(_ request: inout Request, limit: Int) async throws -> String? {
        // Not a form at all: the route says so.
        guard var stream = try? MultipartStream(request, limit: limit, recording: true) else { return nil }
        var model: String?
        do {
            while model == nil, let head = try await stream.nextPart() {
                if head.name == "model" { model = String(decoding: try await stream.gatherPart(), as: UTF8.self) }
            }
        } catch let error as OpenAIError where error.status == .contentTooLarge {
            throw error
        } catch {
            // A malformed form goes on to the route, which says what is wrong with it.
        }
        request.body = stream.replayed()
        return model
    }
}

/// A request body iterator moved on to one reader, the route, which reads it to its end.
private final class RestOfBody: @unchecked Sendable {
    // checked: unchecked Sendable because one task reads it, the route's, after the middleware that read the
    // first pieces is done with it; nothing else holds it.
    var iterator: RequestBody.AsyncIterator
    init(_ iterator: RequestBody.AsyncIterator) { self.iterator = iterator }
}

/// The pieces a middleware read, then the rest of the body.
private struct ReplayedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let prefix: [ByteBuffer]
    let rest: RestOfBody

    struct AsyncIterator: AsyncIteratorProtocol {
        var prefix: [ByteBuffer]
        var index = 0
        let rest: RestOfBody

        mutating func next() async throws -> ByteBuffer? {
            if index < prefix.count {
                defer { index += 1 }
                return prefix[index]
            }
            return try await rest.iterator.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(prefix: prefix, rest: rest) }
}

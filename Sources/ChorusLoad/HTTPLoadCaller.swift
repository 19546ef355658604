import ChorusWire
import Foundation
import NIOCore
import NIOHTTP1

/// One request of an HTTP load: its body as sent, and the seconds of audio it carries.
public struct HTTPLoadRequest: Sendable {
    public var body: [UInt8]
    public var contentType: String
    public var audioSeconds: Double?

    public init(body: [UInt8], contentType: String, audioSeconds: Double? = nil) {
        self.body = body
        self.contentType = contentType
        self.audioSeconds = audioSeconds
    }

    /// A JSON body.
    public static func json(_ object: Any) throws -> HTTPLoadRequest {
        HTTPLoadRequest(body: Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])), contentType: "application/json")
    }

    /// A multipart/form-data body, as the OpenAI audio endpoints take: the JSON template's top-level
    /// values as text fields, and files.
    public static func multipart(fields: [String: Any], files: [(field: String, name: String, bytes: [UInt8])]) throws -> HTTPLoadRequest {
        let boundary = "chorus-load-" + UUID().uuidString
        var body: [UInt8] = []
        func append(_ text: String) { body += Array(text.utf8) }
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            let text: String
            switch value {
            case let string as String: text = string
            case let number as NSNumber: text = "\(number)"
            default: text = String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]), as: UTF8.self)
            }
            append("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(text)\r\n")
        }
        for file in files {
            append("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\n")
            append("Content-Type: application/octet-stream\r\n\r\n")
            body += file.bytes
            append("\r\n")
        }
        append("--\(boundary)--\r\n")
        return HTTPLoadRequest(body: body, contentType: "multipart/form-data; boundary=\(boundary)")
    }
}

/// Calls one route of the OpenAI-compatible HTTP API over keep-alive connections. A streamed answer
/// (server-sent events) is read event by event: the first is the time to first token, each chat chunk
/// with content a token, as vLLM's benchmark counts them.
public struct HTTPLoadCaller: LoadCaller {
    let pool: HTTPConnectionPool
    let path: String
    let requests: [HTTPLoadRequest]
    let timeout: Duration?
    let headers: HTTPHeaders
    let order: InputOrder
    /// Bodies larger than this are counted, not kept (an image or audio answer is measured, not saved).
    static let keptBodyLimit = 64 << 20

    /// `target` is host:port, or an http:// or https:// address (https needs `security`).
    public init(target: String, path: String, requests: [HTTPLoadRequest], timeout: Duration?, security: ConnectionSecurity?,
                apiKey: String? = nil, order: InputOrder = .cycle) throws {
        precondition(!requests.isEmpty, "a load needs at least one request")  // checked: the command makes one from the template
        let (host, port) = try Self.hostAndPort(target)
        pool = HTTPConnectionPool(host: host, port: port, security: security)
        self.path = path
        self.requests = requests
        self.timeout = timeout
        var headers = HTTPHeaders([("Host", "\(host):\(port)"), ("Accept", "*/*"), ("User-Agent", "chorus-load")])
        if let apiKey { headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        self.headers = headers
        self.order = order
    }

    public struct AddressError: Error, CustomStringConvertible {
        public let description: String
    }

    static func hostAndPort(_ target: String) throws -> (String, Int) {
        var rest = Substring(target)
        for scheme in ["http://", "https://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port),
              colon > rest.startIndex else {
            throw AddressError(description: "'\(target)' is not HOST:PORT or http://HOST:PORT")
        }
        return (String(rest[..<colon]), port)
    }

    public func close() {
        pool.closeAll()
    }

    /// Whether the server answers HTTP at all (any status): a wrong address fails fast, not as a run of errors.
    public func reachable() async -> Bool {
        guard let connection = try? await pool.take() else { return false }
        defer { connection.close() }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz", headers: headers)
        do {
            for try await part in connection.send(head, body: ByteBuffer()) {
                if case .head = part { return true }
            }
        } catch {}
        return false
    }

    public func call(_ index: Int) async -> CallOutcome {
        let clock = ContinuousClock(), start = clock.now
        let request = requests[order.pick(index, of: requests.count)]
        var outcome = CallOutcome(failure: nil, latency: .zero, answers: 0)
        outcome.audioInSeconds = request.audioSeconds
        let connection: HTTPConnection
        do {
            connection = try await pool.take()
        } catch {
            outcome.failure = "CONNECT FAILED"
            outcome.latency = clock.now - start
            return outcome
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        head.headers.add(name: "Content-Type", value: request.contentType)
        head.headers.add(name: "Content-Length", value: "\(request.body.count)")
        // The deadline closes the connection, which ends the response stream with an error.
        let expired = StopFlag()
        let watchdog = timeout.map { limit in
            Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                expired.set()
                connection.close()
            }
        }
        defer { watchdog?.cancel() }

        var status = 0, keepAlive = false, streamed = false
        var events = ServerSentEvents()
        var body: [UInt8] = []
        var lastToken: Duration?
        do {
            for try await part in connection.send(head, body: ByteBuffer(bytes: request.body)) {
                switch part {
                case .head(let response):
                    status = Int(response.status.code)  // checked: a UInt status code
                    keepAlive = response.isKeepAlive
                    streamed = response.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") ?? false
                case .body(let buffer):
                    guard streamed else {
                        if body.count < Self.keptBodyLimit { body += buffer.readableBytesView }
                        continue
                    }
                    let time = clock.now - start
                    for data in events.feed(Array(buffer.readableBytesView)) where data != "[DONE]" {
                        outcome.answers += 1
                        if outcome.firstAnswer == nil { outcome.firstAnswer = time }
                        if let failure = Self.readEvent(data, at: time, into: &outcome, lastToken: &lastToken), outcome.failure == nil {
                            outcome.failure = failure
                        }
                    }
                case .end:
                    break
                }
            }
        } catch {
            outcome.failure = expired.isSet ? "DEADLINE_EXCEEDED" : "CONNECTION LOST"
            keepAlive = false
        }
        outcome.latency = clock.now - start
        if outcome.failure == nil {
            if !(200..<300).contains(status) {
                outcome.failure = "HTTP \(status)"
            } else if !streamed {
                outcome.answers = 1
                readBody(body, into: &outcome)
            }
        }
        if keepAlive && !expired.isSet { pool.giveBack(connection) } else { connection.close() }
        return outcome
    }

    /// A streamed event, read as vLLM's openai-chat backend reads it: every chunk with choices after the
    /// first adds an inter-token gap; a chunk with content counts a token until the usage chunk gives the
    /// server's own count; an error object fails the call.
    static func readEvent(_ data: String, at time: Duration, into outcome: inout CallOutcome, lastToken: inout Duration?) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return nil }
        if object["error"] != nil { return "STREAM ERROR" }
        if let choices = object["choices"] as? [[String: Any]], let first = choices.first {
            if let lastToken { outcome.tokenGaps.append(time - lastToken) }
            lastToken = time
            if let content = (first["delta"] as? [String: Any])?["content"] as? String, !content.isEmpty {
                outcome.tokens = (outcome.tokens ?? 0) + 1
            }
        }
        if let usage = object["usage"] as? [String: Any], let completion = (usage["completion_tokens"] as? NSNumber)?.intValue, completion > 0 {
            outcome.tokens = completion
        }
        return nil
    }

    /// A whole answer: audio made, images made, a chat's token count.
    func readBody(_ body: [UInt8], into outcome: inout CallOutcome) {
        if path.hasSuffix("/audio/speech") {
            outcome.audioOutSeconds = WAVSeconds.of(body)
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return }
        if path.hasPrefix("/v1/images"), let data = object["data"] as? [Any] { outcome.images = data.count }
        if let usage = object["usage"] as? [String: Any], let completion = (usage["completion_tokens"] as? NSNumber)?.intValue {
            outcome.tokens = completion
        }
    }
}

/// Splits a text/event-stream body into its events' data, however the bytes arrive.
struct ServerSentEvents {
    private var pending: [UInt8] = []

    /// The data of every event the bytes complete (an event ends at a blank line).
    mutating func feed(_ bytes: [UInt8]) -> [String] {
        pending += bytes
        var events: [String] = []
        while let end = Self.blankLine(in: pending) {
            let block = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            let data = block.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                .filter { $0.hasPrefix("data:") }
                .map { line -> Substring in
                    let value = line.dropFirst(5)
                    return value.hasPrefix(" ") ? value.dropFirst() : value
                }
            if !data.isEmpty { events.append(data.joined(separator: "\n")) }
        }
        return events
    }

    /// Where the first blank line (\n\n or \r\n\r\n) is.
    static func blankLine(in bytes: [UInt8]) -> Range<Int>? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 10 && bytes[i + 1] == 10 { return i..<(i + 2) }
            if i + 3 < bytes.count && bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i..<(i + 4) }
            i += 1
        }
        return nil
    }
}

import Foundation
import NIOCore

/// A `multipart/form-data` body split into its fields (RFC 7578), enough for OpenAI's uploads: the whole body
/// read by `MultipartReader`, each part's content gathered.
package struct MultipartForm {
    package struct Part {
        package let name: String
        package let filename: String?
        package let data: [UInt8]
        package var text: String { String(decoding: data, as: UTF8.self) }
    }

    package let parts: [Part]

    package init(parts: [Part]) { self.parts = parts }

    package init(body: [UInt8], contentType: String) throws {
        var reader = try MultipartReader(contentType: contentType)
        var parts: [Part] = []
        var current: (head: MultipartReader.PartHead, data: [UInt8])?
        var events = try reader.feed(ByteBuffer(bytes: body))
        events += try reader.finish()
        for event in events {
            switch event {
            case .part(let head): current = (head, [])
            case .content(var bytes): current?.data += bytes.readBytes(length: bytes.readableBytes) ?? []
            case .partEnd:
                if let (head, data) = current { parts.append(Part(name: head.name, filename: head.filename, data: data)) }
                current = nil
            }
        }
        self.parts = parts
    }

    package func first(_ name: String) -> Part? { parts.first { $0.name == name } }
    package func all(_ name: String) -> [Part] { parts.filter { $0.name == name } }
}

/// `multipart/form-data` read as it arrives: fed the body in whatever pieces the socket gave, it tells each part's
/// head, its content in pieces (slices of what was fed, never gathered) and its end, so a large file part can be
/// passed on while it is still being received. What might be the start of a delimiter split across two pieces is
/// held back until the next piece says whether it is one (at most the delimiter's length).
package struct MultipartReader {
    package struct PartHead: Equatable, Sendable {
        package let name: String
        package let filename: String?
    }

    package enum Event {
        case part(PartHead)
        case content(ByteBuffer)
        case partEnd
    }

    /// Longest part head (its header lines) accepted: a head is gathered before it is read.
    static let maxHeadBytes = 16 << 10

    private enum State { case preamble, afterDelimiter, head, content, done }

    /// CRLF "--" boundary: what ends a part's content (and, after the preamble's virtual CRLF, starts the first).
    private let delimiter: [UInt8]
    private var state = State.preamble
    /// Received and not yet told: the tail that might start a delimiter, or a head still being gathered.
    private var pending: ByteBuffer

    package init(contentType: String) throws {
        guard contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundaryRange = contentType.range(of: "boundary=") else {
            throw OpenAIError.invalid("the body must be multipart/form-data with a boundary (got content type '\(contentType)')")
        }
        var boundary = String(contentType[boundaryRange.upperBound...].prefix { $0 != ";" })
        if boundary.hasPrefix("\""), boundary.hasSuffix("\""), boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
        guard !boundary.isEmpty, boundary.utf8.count <= 200 else {
            throw OpenAIError.invalid("the multipart boundary must be 1 to 200 characters (RFC 2046 allows 70)")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        // The first delimiter may open the body: read as if a line break came before it.
        pending = ByteBuffer(bytes: [13, 10])
    }

    /// Whether the closing delimiter has been read (what follows it, the epilogue, is ignored).
    package var isComplete: Bool { state == .done }

    /// The events `piece` completes, in order.
    package mutating func feed(_ piece: ByteBuffer) throws -> [Event] {
        guard state != .done else { return [] }
        if pending.readableBytes == 0 {
            pending = piece  // the usual case: nothing held back, so the piece is read where it lies
        } else {
            var piece = piece
            pending.writeBuffer(&piece)
        }
        var events: [Event] = []
        while try step(into: &events) {}
        // What is held back is small (a delimiter's start, a head being gathered): copied, so the piece's storage,
        // which the content slices share, is not kept alive by it.
        pending = pending.readableBytes == 0 ? ByteBuffer() : ByteBuffer(bytes: pending.readableBytesView)
        return events
    }

    /// The end of the body: refused unless the closing delimiter was read.
    package mutating func finish() throws -> [Event] {
        switch state {
        case .done: return []
        case .preamble: throw OpenAIError.invalid("the multipart body has no parts for its boundary")
        default: throw OpenAIError.invalid("the multipart body ends before its closing delimiter")
        }
    }

    /// Reads what `pending` holds in the current state; false when it needs more bytes.
    private mutating func step(into events: inout [Event]) throws -> Bool {
        switch state {
        case .preamble, .content:
            guard let at = firstDelimiter() else {
                // Everything before what could be a delimiter's start is content (or preamble, dropped).
                let safe = contentBeforePossibleDelimiter()
                if safe > 0, let bytes = pending.readSlice(length: safe), state == .content { events.append(.content(bytes)) }
                return false
            }
            if state == .content, at > 0, let bytes = pending.readSlice(length: at) {
                events.append(.content(bytes))
            } else {
                pending.moveReaderIndex(forwardBy: at)
            }
            pending.moveReaderIndex(forwardBy: delimiter.count)
            if state == .content { events.append(.partEnd) }
            state = .afterDelimiter
            return true
        case .afterDelimiter:
            guard pending.readableBytes >= 2, let two = pending.readBytes(length: 2) else { return false }
            if two == [45, 45] {  // "--": the closing delimiter
                state = .done
                pending = ByteBuffer()
                return false
            }
            guard two == [13, 10] else { throw OpenAIError.invalid("a multipart delimiter is not followed by a line break") }
            state = .head
            return true
        case .head:
            let view = pending.readableBytesView
            if view.starts(with: [13, 10]) { throw OpenAIError.invalid("a multipart part has no Content-Disposition") }  // no headers at all
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
                guard pending.readableBytes < Self.maxHeadBytes + 4 else {  // a head at the limit may await its last CR LF CR LF bytes
                    throw OpenAIError.invalid("a multipart part's headers are longer than \(Self.maxHeadBytes) bytes")
                }
                return false
            }
            let length = end.lowerBound - view.startIndex
            guard length <= Self.maxHeadBytes, let head = pending.readString(length: length) else {
                throw OpenAIError.invalid("a multipart part's headers are longer than \(Self.maxHeadBytes) bytes")
            }
            pending.moveReaderIndex(forwardBy: 4)
            events.append(.part(try Self.partHead(head)))
            state = .content
            return true
        case .done:
            return false
        }
    }

    /// The reader offset of the first full delimiter in `pending`, relative to its reader index.
    private func firstDelimiter() -> Int? {
        pending.withUnsafeReadableBytes { bytes -> Int? in
            let n = delimiter.count
            guard let base = bytes.baseAddress, bytes.count >= n else { return nil }
            var i = 0
            while i + n <= bytes.count {
                // memchr finds each candidate CR; only those are compared in full.
                guard let found = memchr(base + i, 13, bytes.count - n + 1 - i) else { return nil }
                i = base.distance(to: UnsafeRawPointer(found))
                if memcmp(base + i, delimiter, n) == 0 { return i }
                i += 1
            }
            return nil
        }
    }

    /// How many of `pending`'s bytes are surely not part of a delimiter: all but a tail from a CR on that the
    /// delimiter starts with (the rest of it may come in the next piece).
    private func contentBeforePossibleDelimiter() -> Int {
        pending.withUnsafeReadableBytes { bytes -> Int in
            let count = bytes.count
            for start in max(0, count - (delimiter.count - 1))..<count where bytes[start] == 13 {
                if delimiter.starts(with: bytes[start..<count]) { return start }
            }
            return count
        }
    }

    /// The part's name and file name from its Content-Disposition header.
    static func partHead(_ headers: String) throws -> PartHead {
        guard let disposition = headers.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-disposition:") }) else {
            throw OpenAIError.invalid("a multipart part has no Content-Disposition")
        }
        func parameter(_ key: String) -> String? {
            guard let range = disposition.range(of: "\(key)=\"") else { return nil }
            return String(disposition[range.upperBound...].prefix { $0 != "\"" })
        }
        guard let name = parameter(" name") ?? parameter(";name") else { throw OpenAIError.invalid("a multipart part has no name") }
        return PartHead(name: name, filename: parameter("filename"))
    }
}

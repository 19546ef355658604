import GatewayHTTP
import NIOCore
import Testing

/// The multipart reader the HTTP front streams uploads with: the same parts however the body is cut into
/// pieces, a file's content told as it arrives (only a possible delimiter's start held back), and each
/// malformed body refused with what is wrong.
@Suite struct MultipartReaderTests {
    static let boundary = "chorus-test-boundary"
    static let contentType = "multipart/form-data; boundary=\(boundary)"

    /// Bytes that look like the delimiter's start without being it: a CR LF, "--", the boundary cut short.
    static let tricky: [UInt8] = Array("a\r\nb\r\n--c\r\n--chorus-test-bound\r\n-".utf8) + [0, 13, 13, 10, 255] + Array("--chorus-test-boundary".utf8)

    static func body(file: [UInt8]) -> [UInt8] {
        var body = Array("preamble to ignore\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
        body += file + Array("\r\n--\(boundary)--\r\nepilogue to ignore".utf8)
        return body
    }

    /// The parts `body` makes when fed in pieces of the given lengths (the rest in one last piece).
    static func parts(_ body: [UInt8], cuts: [Int]) throws -> [(String, String?, [UInt8])] {
        var reader = try MultipartReader(contentType: contentType)
        var events: [MultipartReader.Event] = []
        var start = 0
        for cut in cuts + [body.count] {
            let end = min(max(cut, start), body.count)
            events += try reader.feed(ByteBuffer(bytes: body[start..<end]))
            start = end
        }
        events += try reader.finish()
        var parts: [(String, String?, [UInt8])] = []
        for event in events {
            switch event {
            case .part(let head): parts.append((head.name, head.filename, []))
            case .content(let bytes): parts[parts.count - 1].2 += Array(bytes.readableBytesView)
            case .partEnd: break
            }
        }
        return parts
    }

    @Test func theSamePartsWhereverTheBodyIsCut() throws {
        let body = Self.body(file: Self.tricky)
        let whole = try Self.parts(body, cuts: [])
        #expect(whole.map(\.0) == ["model", "empty", "file"] && whole.map(\.1) == [nil, nil, "a.wav"])
        #expect(whole.map { String(decoding: $0.2, as: UTF8.self) }[0...1] == ["whisper-1", ""])
        #expect(whole[2].2 == Self.tricky)
        for cut in 0...body.count {
            let parts = try Self.parts(body, cuts: [cut])
            #expect(parts.map(\.0) == whole.map(\.0) && parts.map(\.2) == whole.map(\.2), "cut at \(cut)")
        }
        let bytewise = try Self.parts(body, cuts: Array(1..<body.count))
        #expect(bytewise.map(\.2) == whole.map(\.2))
        // MultipartForm, which gathers a whole body, reads it the same way.
        let form = try MultipartForm(body: body, contentType: "multipart/form-data; boundary=\"\(Self.boundary)\"")
        #expect(form.parts.map(\.data) == whole.map(\.2) && form.first("model")?.text == "whisper-1")
    }

    @Test func aFileIsToldAsItArrivesNotGathered() throws {
        var file = [UInt8](repeating: 0, count: 1 << 20)
        for i in file.indices { file[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i >> 9) }
        let body = Self.body(file: file)
        var reader = try MultipartReader(contentType: Self.contentType)
        let fileStart = body.count - file.count - "\r\n--\(Self.boundary)--\r\nepilogue to ignore".utf8.count
        var told: [UInt8] = [], pieces = 0
        var start = 0
        while start < body.count {
            let end = min(start + 65_536, body.count)
            for event in try reader.feed(ByteBuffer(bytes: body[start..<end])) {
                if case .content(let bytes) = event { told += Array(bytes.readableBytesView); pieces += 1 }
            }
            start = end
            // All of the file fed so far has been told but what could start the delimiter ("\r\n--" + boundary).
            let fed = min(max(end - fileStart, 0), file.count)
            if fed > 0 && fed < file.count {
                #expect(told.count - 9 >= fed - ("\r\n--" + Self.boundary).utf8.count, "after \(end) bytes: told \(told.count), fed \(fed) of the file")
            }
        }
        _ = try reader.finish()
        #expect(reader.isComplete)
        #expect(told.count == file.count + 9 && Array(told.suffix(file.count)) == file, "the model field's 9 bytes, then the file")
        #expect(pieces >= 16, "told in \(pieces) pieces, about one per piece fed")
    }

    @Test func malformedBodiesAreRefusedSayingWhy() throws {
        func refusal(_ body: String, contentType: String = Self.contentType) -> String {
            do {
                var reader = try MultipartReader(contentType: contentType)
                _ = try reader.feed(ByteBuffer(string: body))
                _ = try reader.finish()
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let part = "--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"
        #expect(refusal(part + "\r\n--\(Self.boundary)--") == "accepted")
        #expect(refusal(part).contains("ends before its closing delimiter"))
        #expect(refusal(part + "\r\n--\(Self.boundary)").contains("ends before its closing delimiter"))
        #expect(refusal("no delimiter at all").contains("no parts for its boundary"))
        #expect(refusal(part + "\r\n--\(Self.boundary)--", contentType: "application/json").contains("must be multipart/form-data with a boundary"))
        #expect(refusal("--\(Self.boundary)\r\nContent-Type: text/plain\r\n\r\nx\r\n--\(Self.boundary)--").contains("no Content-Disposition"))
        #expect(refusal("--\(Self.boundary)\r\n\r\nx\r\n--\(Self.boundary)--").contains("no Content-Disposition"))
        #expect(refusal("--\(Self.boundary)\r\nContent-Disposition: form-data\r\n\r\nx\r\n--\(Self.boundary)--").contains("has no name"))
        #expect(refusal("--\(Self.boundary)XY").contains("not followed by a line break"))
        let longHead = "--\(Self.boundary)\r\nX-Pad: " + String(repeating: "p", count: 20_000)
        #expect(refusal(longHead).contains("headers are longer than 16384 bytes"))
    }
}

import Foundation

/// A `multipart/form-data` body split into its fields (RFC 7578), enough for OpenAI's audio uploads.
package struct MultipartForm {
    package struct Part {
        let name: String
        let filename: String?
        let data: [UInt8]
        package var text: String { String(decoding: data, as: UTF8.self) }
    }

    package let parts: [Part]

    package init(body: [UInt8], contentType: String) throws {
        guard contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundaryRange = contentType.range(of: "boundary=") else {
            throw OpenAIError.invalid("the body must be multipart/form-data with a boundary (got content type '\(contentType)')")
        }
        var boundary = String(contentType[boundaryRange.upperBound...].prefix { $0 != ";" })
        if boundary.hasPrefix("\""), boundary.hasSuffix("\""), boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        var sections = Self.split(body, on: delimiter)
        guard sections.count >= 2 else { throw OpenAIError.invalid("the multipart body has no parts for its boundary") }
        sections.removeFirst()  // the preamble
        for section in sections {
            if section.starts(with: Array("--".utf8)) { break }  // the closing delimiter
            // Each part: CRLF, headers, CRLF CRLF, content, CRLF (before the next delimiter).
            var content = ArraySlice(section)
            if content.starts(with: [13, 10]) { content = content.dropFirst(2) }
            guard let headerEnd = Self.split(Array(content), on: [13, 10, 13, 10]).first.map({ $0.count }) , headerEnd + 4 <= content.count else {
                throw OpenAIError.invalid("a multipart part has no header end")
            }
            let headers = String(decoding: content.prefix(headerEnd), as: UTF8.self)
            var data = Array(content.dropFirst(headerEnd + 4))
            if data.suffix(2) == [13, 10] { data.removeLast(2) }
            guard let disposition = headers.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-disposition:") }) else {
                throw OpenAIError.invalid("a multipart part has no Content-Disposition")
            }
            func parameter(_ key: String) -> String? {
                guard let range = disposition.range(of: "\(key)=\"") else { return nil }
                return String(disposition[range.upperBound...].prefix { $0 != "\"" })
            }
            guard let name = parameter(" name") ?? parameter(";name") else { throw OpenAIError.invalid("a multipart part has no name") }
            parts.append(Part(name: name, filename: parameter("filename"), data: data))
        }
        self.parts = parts
    }

    func first(_ name: String) -> Part? { parts.first { $0.name == name } }
    func all(_ name: String) -> [Part] { parts.filter { $0.name == name } }

    static func split(_ bytes: [UInt8], on separator: [UInt8]) -> [[UInt8]] {
        var pieces: [[UInt8]] = [], start = 0, i = 0
        let n = separator.count
        guard n > 0 else { return [bytes] }
        while i + n <= bytes.count {
            // Compared in place: copying each candidate made a long boundary cost body × boundary bytes.
            if bytes[i] == separator[0] && bytes[i..<(i + n)].elementsEqual(separator) {
                pieces.append(Array(bytes[start..<i]))
                i += n
                start = i
            } else {
                i += 1
            }
        }
        pieces.append(Array(bytes[start...]))
        return pieces
    }
}
